using Microsoft.Extensions.Logging;

namespace Connect.Proxy;

/// <summary>The proxy's log lines, each with an event id and the session it concerns.</summary>
internal static partial class ProxyLog
{
    [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "session {SessionId}: {Method} {Target} failed with {Status} ({ProxyError}): {Reason}")]
    public static partial void RequestFailed(ILogger logger, string sessionId, string method, string target, int status, ProxyError proxyError, string reason);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Debug, Message = "session {SessionId}: CONNECT {Target} open (stream {StreamId})")]
    public static partial void TunnelOpened(ILogger logger, string sessionId, string target, uint streamId);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Debug, Message = "session {SessionId}: CONNECT {Target} (stream {StreamId}) done, {BytesUp} bytes up, {BytesDown} bytes down")]
    public static partial void TunnelClosed(ILogger logger, string sessionId, string target, uint streamId, long bytesUp, long bytesDown);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Information, Message = "session {SessionId}: CONNECT {Target} (stream {StreamId}) aborted: {Reason}")]
    public static partial void TunnelAborted(ILogger logger, string sessionId, string target, uint streamId, string reason);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Information, Message = "proxy connection from {Remote} rejected with {Status}: {Reason}")]
    public static partial void ConnectionRejected(ILogger logger, string remote, int status, string reason);

    [LoggerMessage(EventId = 2007, Level = LogLevel.Information, Message = "session {SessionId}: {Method} {Target} lost its tunnel before any response (attempt {Attempt}): {Reason}; sending it again")]
    public static partial void RequestRetried(ILogger logger, string sessionId, string method, string target, int attempt, string reason);

    [LoggerMessage(EventId = 2009, Level = LogLevel.Information, Message = "session {SessionId}: {Method} {Target}: the reused upstream connection closed before any response (attempt {Attempt}): {Reason}; sending it again on a new one")]
    public static partial void RequestRetriedAfterReuse(ILogger logger, string sessionId, string method, string target, int attempt, string reason);

    [LoggerMessage(EventId = 2008, Level = LogLevel.Information, Message = "session {SessionId}: CONNECT {Target} (stream {StreamId}) reset after {IdleSeconds} s without a byte either way (StreamIdleTimeout)")]
    public static partial void TunnelIdle(ILogger logger, string sessionId, string target, uint streamId, double idleSeconds);

    [LoggerMessage(EventId = 2006, Level = LogLevel.Information, Message = "session {SessionId}: {Method} {Target} failed after the response started: {Reason}")]
    public static partial void ResponseAborted(ILogger logger, string sessionId, string method, string target, string reason);
}
