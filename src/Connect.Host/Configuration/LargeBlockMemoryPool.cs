using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;

namespace Connect.Host.Configuration;

/// <summary>
/// Kestrel's memory pool with 32 KiB blocks instead of 4 KiB. Kestrel's socket transport receives into one pool block
/// at a time, after a zero-byte receive that waits for data; with 4 KiB blocks a bulk tunnel costs the node two
/// receive syscalls and one pipe wake-up (through the WebSocket reader into the tunnel's read loop) per 4 KiB, about
/// 530 receive syscalls per MiB measured (bench/ANALYSIS.md). With 32 KiB blocks that is one receive per up to 32 KiB.
/// </summary>
/// <remarks>
/// Idle connections hold no block (Kestrel rents only once data has arrived, and a write's block goes back once the
/// socket took it), but every small write or read (a PING out, a PONG in) borrows a whole block until it is through,
/// and a node's keep-alive burst touches thousands of links at once. Kestrel creates one pool per I/O queue per
/// listener (2 per listener on 2 cores, 16 on 16); each used to keep up to 256 pinned blocks for good (8 MiB per
/// pool, so 128 MiB per listener on 16 cores), and bursts past that allocated more pinned blocks that died in the
/// pinned heap, which is never compacted: 161 MB of free space in it at 10,000 idle links. So every pool of this
/// factory shares one free list of at most <see cref="MaxRetained"/> blocks, and <see cref="Trim"/> (every
/// <see cref="DefaultTrimInterval"/>) gives the GC back the free blocks that no rent needed during the whole
/// interval, as Kestrel's own pool evicts unused blocks since .NET 10. (Plain gen0 blocks past a small pinned set
/// were tried: more RSS and CPU at 10,000 idle links, docs/SCALING.md.)
/// </remarks>
public sealed class LargeBlockMemoryPoolFactory : IMemoryPoolFactory<byte>, IDisposable
{
    /// <summary>The size of every block.</summary>
    public const int BlockSize = 32 * 1024;

    /// <summary>Free blocks kept for reuse by all pools together (32 MiB); more than that go back to the GC at once.</summary>
    public const int MaxRetained = 1024;

    /// <summary>How often unused blocks are given back: long against a keep-alive burst (1 s) and a bulk transfer's gaps.</summary>
    public static readonly TimeSpan DefaultTrimInterval = TimeSpan.FromSeconds(10);

    private readonly ConcurrentQueue<Block> _free = new();
    private readonly ITimer? _trimTimer;
    private int _freeCount;
    private int _rentedCount;
    // The fewest free blocks seen since the last trim: that many were not needed by any rent during the interval.
    private int _lowWater;
    private long _allocated;
    private long _evicted;
    private bool _disposed;

    /// <param name="timeProvider">Paces <see cref="Trim"/>; null: no timer (a test calls Trim itself).</param>
    public LargeBlockMemoryPoolFactory(TimeProvider? timeProvider, TimeSpan? trimInterval = null)
    {
        var interval = trimInterval ?? DefaultTrimInterval;
        if (interval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(trimInterval), interval, "the trim interval must be positive");
        }
        _trimTimer = timeProvider?.CreateTimer(static state => ((LargeBlockMemoryPoolFactory)state!).Trim(), this, interval, interval);
    }

    /// <summary>Free blocks held for reuse now.</summary>
    public int FreeBlocks => Volatile.Read(ref _freeCount);

    /// <summary>Blocks rented and not yet returned (a connection's receive or write in progress).</summary>
    public int RentedBlocks => Volatile.Read(ref _rentedCount);

    /// <summary>Blocks allocated so far (a rent that found the free list empty).</summary>
    public long Allocated => Interlocked.Read(ref _allocated);

    /// <summary>Free blocks given back to the GC so far by <see cref="Trim"/>.</summary>
    public long Evicted => Interlocked.Read(ref _evicted);

    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => new LargeBlockMemoryPool(this);

    /// <summary>Gives the GC back the free blocks that no rent needed since the previous trim; returns how many.</summary>
    public int Trim()
    {
        var unused = Math.Min(Interlocked.Exchange(ref _lowWater, int.MaxValue), Volatile.Read(ref _freeCount));
        var evicted = 0;
        while (evicted < unused && _free.TryDequeue(out _))
        {
            Interlocked.Decrement(ref _freeCount);
            evicted++;
        }
        Interlocked.Add(ref _evicted, evicted);
        // The next interval starts with what is left; every rent from here on lowers the mark.
        LowerMark(Volatile.Read(ref _freeCount));
        return evicted;
    }

    public void Dispose()
    {
        Volatile.Write(ref _disposed, true);
        _trimTimer?.Dispose();
        _free.Clear();
        Volatile.Write(ref _freeCount, 0);
    }

    private Block Rent()
    {
        Interlocked.Increment(ref _rentedCount);
        if (_free.TryDequeue(out var block))
        {
            LowerMark(Interlocked.Decrement(ref _freeCount));
            block.Rented = true;
            return block;
        }
        // Demand beyond the free list: none of it was unused.
        LowerMark(0);
        Interlocked.Increment(ref _allocated);
        // Pinned (POH) like Kestrel's own pool: socket I/O pins its buffers, and pinned-heap arrays cost nothing to pin.
        // Uninitialized: a block that only ever carries PINGs makes one page of it resident, not 32 KiB.
        return new Block(this, GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true)) { Rented = true };
    }

    private void Return(Block block)
    {
        Interlocked.Decrement(ref _rentedCount);
        if (!Volatile.Read(ref _disposed) && Interlocked.Increment(ref _freeCount) <= MaxRetained)
        {
            _free.Enqueue(block);
            return;
        }
        Interlocked.Decrement(ref _freeCount);
    }

    private void LowerMark(int free)
    {
        var mark = Volatile.Read(ref _lowWater);
        while (free < mark)
        {
            var seen = Interlocked.CompareExchange(ref _lowWater, free, mark);
            if (seen == mark)
            {
                return;
            }
            mark = seen;
        }
    }

    /// <summary>What Kestrel holds per I/O queue: a view of the factory's one free list.</summary>
    private sealed class LargeBlockMemoryPool(LargeBlockMemoryPoolFactory blocks) : MemoryPool<byte>
    {
        public override int MaxBufferSize => BlockSize;

        public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
        {
            if (minBufferSize > BlockSize)
            {
                throw new ArgumentOutOfRangeException(nameof(minBufferSize), minBufferSize, $"at most {BlockSize} bytes per block");
            }
            return blocks.Rent();
        }

        // Blocks belong to the factory's free list, which outlives a listener's pools (a drain closes listeners early).
        protected override void Dispose(bool disposing)
        {
        }
    }

    private sealed class Block(LargeBlockMemoryPoolFactory blocks, byte[] array) : IMemoryOwner<byte>
    {
        public bool Rented { get; set; }

        public Memory<byte> Memory => array;

        public void Dispose()
        {
            // Once per rent: a double dispose must not put the block into the pool twice.
            if (Rented)
            {
                Rented = false;
                blocks.Return(this);
            }
        }
    }
}
