using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;

namespace Connect.Host.Configuration;

/// <summary>
/// Kestrel's memory pool with 32 KiB blocks instead of 4 KiB. Kestrel's socket transport receives into one pool block
/// at a time, after a zero-byte receive that waits for data; with 4 KiB blocks a bulk tunnel costs the node two
/// receive syscalls and one pipe wake-up (through the WebSocket reader into the tunnel's read loop) per 4 KiB, about
/// 530 receive syscalls per MiB measured (bench/ANALYSIS.md). With 32 KiB blocks that is one receive per up to 32 KiB.
/// Idle connections still hold no block (Kestrel rents only once data has arrived), so idle memory per link is the
/// same; the pool keeps at most <see cref="MaxRetained"/> free blocks (8 MiB) and lets the GC have the rest.
/// </summary>
public sealed class LargeBlockMemoryPoolFactory : IMemoryPoolFactory<byte>
{
    /// <summary>Free blocks kept for reuse per pool; more than that go back to the GC.</summary>
    public const int MaxRetained = 256;

    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => new LargeBlockMemoryPool();

    private sealed class LargeBlockMemoryPool : MemoryPool<byte>
    {
        public const int BlockSize = 32 * 1024;

        private readonly ConcurrentQueue<Block> _free = new();
        private int _freeCount;
        private bool _disposed;

        public override int MaxBufferSize => BlockSize;

        public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
        {
            if (minBufferSize > BlockSize)
            {
                throw new ArgumentOutOfRangeException(nameof(minBufferSize), minBufferSize, $"at most {BlockSize} bytes per block");
            }
            if (_free.TryDequeue(out var block))
            {
                Interlocked.Decrement(ref _freeCount);
                block.Rented = true;
                return block;
            }
            // Pinned (POH) like Kestrel's own pool: socket I/O pins its buffers, and pinned-heap arrays cost nothing to pin.
            return new Block(this, GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true)) { Rented = true };
        }

        internal void Return(Block block)
        {
            if (!Volatile.Read(ref _disposed) && Interlocked.Increment(ref _freeCount) <= MaxRetained)
            {
                _free.Enqueue(block);
                return;
            }
            Interlocked.Decrement(ref _freeCount);
        }

        protected override void Dispose(bool disposing)
        {
            Volatile.Write(ref _disposed, true);
            _free.Clear();
        }
    }

    private sealed class Block(LargeBlockMemoryPool pool, byte[] array) : IMemoryOwner<byte>
    {
        public bool Rented { get; set; }

        public Memory<byte> Memory => array;

        public void Dispose()
        {
            // Once per rent: a double dispose must not put the block into the pool twice.
            if (Rented)
            {
                Rented = false;
                pool.Return(this);
            }
        }
    }
}
