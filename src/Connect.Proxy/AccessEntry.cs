namespace Connect.Proxy;

/// <summary>One line of the access log: a finished absolute-form request or CONNECT tunnel, as seen by its entry node.</summary>
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
    string? Detail);
