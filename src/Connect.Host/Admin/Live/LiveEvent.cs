namespace Connect.Host.Admin.Live;

/// <summary>One SSE message, serialized once by the feed and shared by every client it goes to.</summary>
/// <param name="Type">The SSE event name (<see cref="Connect.Admin.Contracts.LiveEventTypes"/>).</param>
/// <param name="Data">One line of JSON.</param>
public sealed record LiveEvent(string Type, string Data);
