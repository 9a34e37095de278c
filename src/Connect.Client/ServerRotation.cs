namespace Connect.Client;

/// <summary>
/// The servers the agent's link slots dial, in order: the latest trusted GOAWAY suggestions first (the cluster's
/// freshest word on where to go), then the configured servers. Suggested servers stay in the rotation until a later
/// GOAWAY names others, so when every configured (blue) node is gone the agent still reaches the green ones.
/// Also keeps each server's refusals (400/401/403): a refusing server sits out a long, jittered back-off while the
/// others are tried, and the agent gives up only when every configured server has refused several times in a row.
/// </summary>
internal sealed class ServerRotation(AgentOptions options, TimeProvider time)
{
    private readonly object _sync = new();
    private readonly Dictionary<Uri, Refusals> _refusals = [];
    private IReadOnlyList<Uri> _learned = [];

    private sealed class Refusals
    {
        public int InARow;
        public long BlockedUntil;
        public string LastReason = "";
    }

    /// <summary>Servers learned from GOAWAY suggestions that are not configured.</summary>
    public IReadOnlyList<Uri> Learned { get { lock (_sync) { return _learned; } } }

    /// <summary>Every server in dialling order (learned first, then configured, no duplicates).</summary>
    public IReadOnlyList<Uri> Candidates
    {
        get
        {
            lock (_sync)
            {
                return _learned.Concat(options.Servers).Distinct().ToArray();
            }
        }
    }

    /// <summary>Replaces the learned servers with a GOAWAY's trusted suggestions; an empty list keeps what the cluster said last.</summary>
    public void Learn(IReadOnlyList<Uri> suggested)
    {
        if (suggested.Count == 0)
        {
            return;
        }
        lock (_sync)
        {
            _learned = suggested.Where(s => !options.Servers.Contains(s)).Distinct().ToArray();
        }
    }

    /// <summary>
    /// The next server for a slot, from <paramref name="cursor"/> on: not sitting out a refusal, preferably not in use
    /// by another link and not the one being left; null with <paramref name="wait"/> when every server sits out a refusal.
    /// </summary>
    public Uri? Next(ref int cursor, IReadOnlySet<Uri> inUse, Uri? leaving, out TimeSpan wait)
    {
        var candidates = Candidates;
        var now = time.GetTimestamp();
        var open = new List<(Uri Server, int Index)>();
        var earliest = long.MaxValue;
        for (var i = 0; i < candidates.Count; i++)
        {
            var index = (Math.Max(cursor, 0) + i) % candidates.Count;
            var server = candidates[index];
            var blockedUntil = BlockedUntil(server);
            if (blockedUntil > now)
            {
                earliest = Math.Min(earliest, blockedUntil);
                continue;
            }
            open.Add((server, index));
        }
        if (open.Count == 0)
        {
            wait = time.GetElapsedTime(now, earliest);
            return null;
        }
        // Spread links over nodes, and move off a server that sent GOAWAY, when there is any choice.
        var pick = open.FirstOrDefault(c => !inUse.Contains(c.Server) && c.Server != leaving);
        if (pick.Server is null)
        {
            pick = open.FirstOrDefault(c => c.Server != leaving);
        }
        if (pick.Server is null)
        {
            pick = open[0]; // Only the server being left: behind a load balancer it reaches another node.
        }
        cursor = pick.Index;
        wait = TimeSpan.Zero;
        return pick.Server;
    }

    private long BlockedUntil(Uri server)
    {
        lock (_sync)
        {
            return _refusals.TryGetValue(server, out var r) ? r.BlockedUntil : 0;
        }
    }

    /// <summary>A link to <paramref name="server"/> was established: its refusals are forgiven.</summary>
    public void Connected(Uri server)
    {
        lock (_sync)
        {
            _refusals.Remove(server);
        }
    }

    /// <summary>Records a refusal; returns how long the server now sits out.</summary>
    public TimeSpan Refused(Uri server, string reason)
    {
        lock (_sync)
        {
            if (!_refusals.TryGetValue(server, out var r))
            {
                _refusals[server] = r = new Refusals();
            }
            r.InARow++;
            r.LastReason = reason;
            // Doubling from RefusalBackoff up to RefusalBackoffMax, uniform in [half, full]: a token rotated mid-roll
            // takes a while to reach every node, and a fleet of refused agents must not knock in lockstep.
            var full = Math.Min(options.RefusalBackoffMax.TotalMilliseconds, options.RefusalBackoff.TotalMilliseconds * Math.Pow(2, Math.Min(r.InARow - 1, 16)));
            var delay = TimeSpan.FromMilliseconds((full / 2) + (Random.Shared.NextDouble() * full / 2));
            r.BlockedUntil = time.GetTimestamp() + (long)(delay.TotalSeconds * time.TimestampFrequency);
            return delay;
        }
    }

    /// <summary>True when every configured server has refused <see cref="AgentOptions.RefusalsBeforeExit"/> times in a row; <paramref name="summary"/> lists their last words.</summary>
    public bool AllConfiguredRefused(out string summary)
    {
        lock (_sync)
        {
            var all = options.Servers.All(s => _refusals.TryGetValue(s, out var r) && r.InARow >= options.RefusalsBeforeExit);
            summary = all
                ? $"every configured server refused the agent {options.RefusalsBeforeExit} times in a row: " +
                  string.Join("; ", options.Servers.Distinct().Select(s => _refusals[s].LastReason))
                : "";
            return all;
        }
    }
}
