using Connect.Ctl;

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    // First Ctrl+C stops the running command (cluster tail, ready --wait); the second ends the process.
    if (!cancel.IsCancellationRequested)
    {
        e.Cancel = true;
        cancel.Cancel();
    }
};
var ctl = new ConnectCtl();
var input = args.Length <= 1 && !Console.IsInputRedirected ? Console.In : null;
return await ctl.RunAsync(args, Console.Out, Console.Error, input, cancel.Token);
