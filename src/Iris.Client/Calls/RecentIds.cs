using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Iris.Calls;

/// <summary>
/// Message ids seen in the last minute or two: a generation of ids is dropped every minute. Exact for any
/// <see cref="Guid"/>, and compact for the ids Iris gives (<see cref="CallIds"/>: a process' 8-byte prefix, then a
/// counter): ids are kept as bits in blocks of 64 consecutive counter values, so a hop that sees a sender's messages
/// in a row keeps one table entry per 64 of them instead of one each. At a hundred thousand messages a second, a
/// generation held as one entry per id grew to millions of entries, and looking ids up in it (cache misses, growing
/// the table) took a quarter of a silo's CPU.
/// </summary>
internal sealed class RecentIds(TimeProvider time)
{
    private static readonly TimeSpan Generation = TimeSpan.FromMinutes(1);
    private readonly Lock _lock = new();
    private Dictionary<Block, ulong> _current = [];
    private Dictionary<Block, ulong> _previous = [];
    private long _started = time.GetTimestamp();

    /// <summary>Remembers <paramref name="id"/>; returns whether it is new.</summary>
    public bool Add(Guid id)
    {
        lock (_lock)
        {
            Rotate();
            return AddHeld(id);
        }
    }

    public bool Contains(Guid id)
    {
        lock (_lock)
        {
            Rotate();
            var (block, bit) = Split(id);
            return ((_current.GetValueOrDefault(block) | _previous.GetValueOrDefault(block)) & bit) != 0;
        }
    }

    /// <summary>Holds the ids for a batch of <see cref="Batch.Add"/>s (one lock and one look at the clock for all of
    /// them); dispose it to let others in.</summary>
    public Batch Open()
    {
        _lock.Enter();
        Rotate();
        return new Batch(this);
    }

    /// <summary>The ids held for a batch (see <see cref="Open"/>).</summary>
    public readonly ref struct Batch
    {
        private readonly RecentIds _ids;

        internal Batch(RecentIds ids) => _ids = ids;

        /// <summary>Remembers <paramref name="id"/>; returns whether it is new.</summary>
        public bool Add(Guid id) => _ids.AddHeld(id);

        public void Dispose() => _ids._lock.Exit();
    }

    private bool AddHeld(Guid id)
    {
        var (block, bit) = Split(id);
        if ((_previous.GetValueOrDefault(block) & bit) != 0)
        {
            return false;
        }

        ref var bits = ref CollectionsMarshal.GetValueRefOrAddDefault(_current, block, out _);
        if ((bits & bit) != 0)
        {
            return false;
        }

        bits |= bit;
        return true;
    }

    /// <summary>The block of 64 ids that <paramref name="id"/> falls in and its bit there: the id's first 8 bytes and
    /// the rest but its last 6 bits name the block, those 6 bits the bit, so no two ids share both.</summary>
    private static (Block Block, ulong Bit) Split(Guid id)
    {
        Span<byte> bytes = stackalloc byte[16];
        id.TryWriteBytes(bytes);
        var low = BinaryPrimitives.ReadUInt64LittleEndian(bytes[8..]);
        return (new Block(BinaryPrimitives.ReadUInt64LittleEndian(bytes), low >> 6), 1UL << (int)(low & 63));
    }

    private void Rotate()
    {
        if (time.GetElapsedTime(_started) > Generation)
        {
            (_previous, _current) = (_current, _previous);
            _current.Clear();
            _started = time.GetTimestamp();
        }
    }

    /// <summary>64 ids in a row: a sender's prefix and its counter divided by 64.</summary>
    private readonly record struct Block(ulong Prefix, ulong Index)
    {
        // Consecutive blocks of one sender get consecutive hashes, which spread over the table's buckets.
        public override int GetHashCode() => unchecked((int)Index ^ (int)(Index >> 32) ^ (int)Prefix ^ (int)(Prefix >> 32));
    }
}
