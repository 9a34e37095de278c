using System.Security.Cryptography;
using System.Text;
using Connect.Host.Configuration;
using Connect.Host.Security;

namespace Connect.Host.Admin;

/// <summary>
/// The admin API's bearer token: <c>Connect:Admin:Token</c>, or, on a development node (no Connect:Auth:Tokens)
/// with none configured, the development token. A production node without an admin token keeps the API closed.
/// </summary>
public sealed class AdminTokens
{
    private readonly byte[]? _hash;

    public AdminTokens(ConnectSettings settings, TokenStore tokens)
    {
        if (!string.IsNullOrEmpty(settings.Admin.Token))
        {
            _hash = Hash(settings.Admin.Token);
        }
        else if (tokens.IsDevelopment)
        {
            _hash = Hash(settings.Auth.DevelopmentToken);
            UsesDevelopmentToken = true;
        }
    }

    /// <summary>True when the development token opens the admin API (no admin token configured, development node).</summary>
    public bool UsesDevelopmentToken { get; }

    public bool IsConfigured => _hash is not null;

    /// <summary>Null when the request may pass, else the reason it may not (the 401's body).</summary>
    public string? Refusal(string? authorization)
    {
        if (_hash is null)
        {
            return "the admin API is closed: this node has no admin token (set Connect:Admin:Token)";
        }
        if (string.IsNullOrEmpty(authorization) || !authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return "send Authorization: Bearer <admin token> (connectctl --token or CONNECT_ADMIN_TOKEN)";
        }
        return CryptographicOperations.FixedTimeEquals(Hash(authorization["Bearer ".Length..].Trim()), _hash) ? null : "invalid admin token";
    }

    private static byte[] Hash(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));
}
