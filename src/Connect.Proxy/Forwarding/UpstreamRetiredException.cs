namespace Connect.Proxy.Forwarding;

/// <summary>A request met a pooled connection whose target closes after every response; nothing was sent on it.</summary>
public sealed class UpstreamRetiredException() : IOException("the upstream connection was retired: the target closes it after every response (HTTP/1.0)");
