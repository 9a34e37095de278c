using System.Threading.Tasks.Sources;

namespace Connect.Tunnel.Multiplexing;

/// <summary>
/// One reusable wait for one waiter at a time (a stream's reader, a stream's writer waiting for credit, the
/// link's write loop): no TaskCompletionSource per wait, so steady-state reads and writes allocate nothing.
/// The continuation runs on the thread that signals, so a wake-up is not a thread-pool hop; signal only
/// outside locks, and only from code that never blocks synchronously.
/// </summary>
internal sealed class Waiter : IValueTaskSource
{
    private ManualResetValueTaskSourceCore<bool> _core;
    private CancellationTokenRegistration _registration;
    private int _armed;

    /// <summary>Prepares a wait; the caller awaits the result after leaving its lock.</summary>
    public ValueTask Arm(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _armed) == 1)
        {
            throw new InvalidOperationException("another operation is already waiting here (concurrent reads or concurrent writes on one stream)");
        }
        _core.Reset();
        Volatile.Write(ref _armed, 1);
        var pending = new ValueTask(this, _core.Version);
        if (cancellationToken.CanBeCanceled)
        {
            _registration = cancellationToken.UnsafeRegister(static (state, token) => ((Waiter)state!).Cancel(token), this);
        }
        return pending;
    }

    /// <summary>Completes the pending wait, if any (a signal without a waiter is dropped: waiters re-check their condition under the owner's lock).</summary>
    public void Signal()
    {
        if (Interlocked.Exchange(ref _armed, 0) == 1)
        {
            _registration.Unregister();
            _core.SetResult(true);
        }
    }

    private void Cancel(CancellationToken token)
    {
        if (Interlocked.Exchange(ref _armed, 0) == 1)
        {
            _core.SetException(new OperationCanceledException(token));
        }
    }

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}

/// <summary>An auto-reset signal with one async waiter (the write loop): Set before Wait makes the next Wait return at once.</summary>
internal sealed class AutoResetSignal : IValueTaskSource
{
    private const int Idle = 0;
    private const int Signalled = 1;
    private const int Waiting = 2;
    private ManualResetValueTaskSourceCore<bool> _core;
    private int _state;

    public ValueTask WaitAsync()
    {
        if (Interlocked.CompareExchange(ref _state, Idle, Signalled) == Signalled)
        {
            return ValueTask.CompletedTask;
        }
        _core.Reset();
        if (Interlocked.CompareExchange(ref _state, Waiting, Idle) == Idle)
        {
            return new ValueTask(this, _core.Version);
        }
        // Set between the two exchanges: consume it.
        Volatile.Write(ref _state, Idle);
        return ValueTask.CompletedTask;
    }

    /// <summary>Wakes the waiter (on this thread, until it next awaits something that is not complete); call outside locks.</summary>
    public void Set()
    {
        while (true)
        {
            switch (Volatile.Read(ref _state))
            {
                case Signalled:
                    return;
                case Idle:
                    if (Interlocked.CompareExchange(ref _state, Signalled, Idle) == Idle)
                    {
                        return;
                    }
                    break;
                default:
                    if (Interlocked.CompareExchange(ref _state, Idle, Waiting) == Waiting)
                    {
                        _core.SetResult(true);
                        return;
                    }
                    break;
            }
        }
    }

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
