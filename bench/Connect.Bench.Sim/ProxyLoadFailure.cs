namespace Connect.Bench.Sim;

/// <summary>One failed load request: when it started (wall clock, to compare with a kill), whether it was a CONNECT, and why it failed.</summary>
public sealed record ProxyLoadFailure(DateTimeOffset Started, bool Connect, string Reason);
