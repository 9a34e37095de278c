using Connect.Host;
using Connect.Host.Configuration;
using Connect.Host.Security;
using Connect.Host.Tunnels;

// connect-node hash-token: prints the SHA-256 hex of a token for Connect:Auth:Tokens:N:Sha256, so the token itself
// never has to be written into configuration. The token is read from stdin (an argument would show in ps and shell history).
if (args.Length > 0 && args[0] == "hash-token")
{
    var token = args.Length > 1 ? args[1] : Console.In.ReadLine();
    if (string.IsNullOrEmpty(token))
    {
        Console.Error.WriteLine("connect-node hash-token: give the token on stdin, e.g. printf %s \"$TOKEN\" | connect-node hash-token");
        return 2;
    }
    if (token.Length < 16)
    {
        Console.Error.WriteLine("connect-node hash-token: warning: tokens shorter than 16 characters are refused when configured as Token; use a long random token");
    }
    Console.WriteLine(TokenStore.HashHex(token));
    return 0;
}

// --help and --version print and exit; an unknown switch or stray word stops here with exit 2 instead of being ignored.
if (NodeCommandLine.Handle(args, Console.Out, Console.Error) is { } exitCode)
{
    return exitCode;
}

WebApplication app;
try
{
    app = ConnectNode.Build(args);
}
catch (InvalidOperationException e)
{
    Console.Error.WriteLine($"connect-node: {e.Message}");
    return 2;
}

var configured = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<ConnectSettings>>().Value;
if (NodeCommandLine.FindTakenPort(configured) is { } taken)
{
    Console.Error.WriteLine(taken);
    return NodeCommandLine.Failed;
}

app.Lifetime.ApplicationStarted.Register(() =>
{
    var node = app.Services.GetRequiredService<NodeIdentity>();
    var tokens = app.Services.GetRequiredService<TokenStore>();
    var settings = app.Configuration.GetSection(ConnectSettings.Section).Get<ConnectSettings>() ?? new ConnectSettings();
    Console.WriteLine($"""

        Connect node {node.Address} is running.
          agents (tunnel):  {node.TunnelUrl}
          proxy:            {node.ProxyUrl}
          admin / health:   {node.AdminUrl}
        """);
    if (app.Services.GetRequiredService<Connect.Host.Admin.AdminTokens>().UsesDevelopmentToken)
    {
        Console.WriteLine($"  admin API (/v1) accepts the DEVELOPMENT TOKEN (no Connect:Admin:Token configured): connectctl {node.AdminUrl["http://".Length..]} --token {settings.Auth.DevelopmentToken} cluster show");
    }
    if (tokens.IsDevelopment)
    {
        var token = settings.Auth.DevelopmentToken;
        Console.WriteLine($"""
              DEVELOPMENT TOKEN (not a secret, accepted only because no tokens are configured): {token}
              Try it:
                connect-client --server {node.TunnelUrl} --session demo --token {token}
                curl -x {new Uri(node.ProxyUrl).Scheme}://demo:{token}@{new Uri(node.ProxyUrl).Authority} http://localhost:3000/

            """);
    }
});

try
{
    await app.RunAsync();
}
catch (Exception e) when (NodeCommandLine.DescribeBindFailure(e, configured) is { } message)
{
    // A port taken between the check above and the bind (or one the check cannot see): still one line, not a stack trace.
    Console.Error.WriteLine(message);
    return NodeCommandLine.Failed;
}
return 0;
