using System.Net;
using System.Net.Sockets;

namespace Connect.Testing;

/// <summary>A loopback port nobody listens on right now, for the settings that must name a fixed port (a node advertises its tunnel URL only then).</summary>
public static class FreePorts
{
    public static int Next()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
