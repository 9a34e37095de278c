namespace Connect.Ctl;

/// <summary>connectctl's exit codes; scripts and deploy pipelines branch on them (docs/OPERATIONS.md).</summary>
public static class ExitCodes
{
    /// <summary>Done; for <c>connect ready</c>: the node holds no links and no streams.</summary>
    public const int Ok = 0;

    /// <summary>A check failed: <c>connect ready</c> while the node still holds links or streams.</summary>
    public const int NotReady = 1;

    /// <summary>The command line is wrong (unknown command, missing argument); nothing was sent.</summary>
    public const int Usage = 2;

    /// <summary>The admin endpoint could not be reached (refused, timed out, not an admin API).</summary>
    public const int Unreachable = 3;

    /// <summary>The admin API refused the token (401).</summary>
    public const int Unauthorized = 4;

    /// <summary>The node answered with an error: unknown session or member (404), bad request, the cluster did not answer (5xx).</summary>
    public const int Failed = 5;
}
