namespace Connect.Proxy;

/// <summary>
/// One line of the access log: a finished absolute-form request or CONNECT tunnel, as seen by its entry node.
/// <see cref="LinkNode"/> is the node whose tunnel link carried it ("-" when no stream was opened).
/// </summary>
public sealed record AccessEntry(
    DateTimeOffset At,
    string SessionId,
    string EntryNode,
    string Method,
    string Target,
    int Status,
    long BytesUp,
    long BytesDown,
    double DurationMs,
    string? Error,
    string? Detail,
    string LinkNode = "-");
