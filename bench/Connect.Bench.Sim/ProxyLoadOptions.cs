namespace Connect.Bench.Sim;

/// <summary>How a proxy load run sends requests: where to, for which sessions, how fast, for how long.</summary>
public sealed record ProxyLoadOptions
{
    /// <summary>Proxy endpoints (host:port) of the nodes to send through; each request picks one at random (seeded).</summary>
    public required IReadOnlyList<string> Proxies { get; init; }

    /// <summary>The sessions to ask for (names as the simulator makes them); request i names session i mod n.</summary>
    public required IReadOnlyList<string> Sessions { get; init; }

    public required string Token { get; init; }

    /// <summary>Requests started per second (a fixed rate, not a closed loop: a slow cluster does not slow the load).</summary>
    public double Rate { get; init; } = 100;

    /// <summary>How long to send; the run then waits for the requests in flight, each bounded by <see cref="RequestTimeout"/>.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>The most requests in flight; a request due while this many are open is counted as skipped, not sent.</summary>
    public int MaxInFlight { get; init; } = 512;

    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary><c>get</c> (absolute-form GET), <c>connect</c> (CONNECT, then a GET inside the tunnel) or <c>both</c> (each request one of the two at random).</summary>
    public string Mode { get; init; } = "both";
}
