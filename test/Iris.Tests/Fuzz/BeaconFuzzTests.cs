using CsCheck;
using Iris.Overlay;
using Iris.Overlay.Discovery;
using Iris.Overlay.Security;
using Iris.Overlay.Transport;
using Iris.Tests.Overlay;
using Microsoft.Extensions.Time.Testing;
using Xunit.Abstractions;

namespace Iris.Tests.Fuzz;

/// <summary>Hostile datagrams for <see cref="BeaconFilter.Check"/> and <see cref="Beacon.TryDecode"/>: they never
/// throw, never accept a beacon whose bytes were changed, and allocate within bounds.</summary>
public class BeaconFuzzTests(ITestOutputHelper output)
{
    private const string Target = "BeaconFilter.Check";
    private static readonly TimeSpan Freshness = TimeSpan.FromSeconds(30);
    private static readonly DateTimeOffset Now = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);
    private static readonly long NowMs = Now.ToUnixTimeMilliseconds();
    private static readonly NetworkKey Key = NetworkKey.FromBytes(Enumerable.Range(1, NetworkKey.Size).Select(i => (byte)i).ToArray());
    private static readonly NetworkKey OtherKey = NetworkKey.FromBytes(new byte[NetworkKey.Size]);

    private static readonly Gen<string> Gateway = Gen.OneOf(
        Gen.Const(string.Empty),
        Gen.String[Gen.Char.AlphaNumeric, 1, 40],
        Gen.String[Gen.Char['\u00e0', '\u0800'], 1, 60]);

    /// <summary>Fresh beacons: sent within the freshness window of <see cref="Now"/>.</summary>
    private static readonly Gen<Beacon> Fresh = Gen.Select(
        Generators.Handle, Gen.Bool, Gateway, Gen.Long[-(long)Freshness.TotalMilliseconds, (long)Freshness.TotalMilliseconds], Gen.ULong,
        (node, ready, gateway, offset, nonce) => new Beacon(node, ready, gateway, NowMs + offset, nonce));

    /// <summary>Send times far from now, at the edges of the window and where <c>now - sent</c> overflows.</summary>
    private static readonly Gen<long> AnyTime = Gen.OneOf(
        Gen.Long,
        Gen.OneOfConst(long.MinValue, long.MaxValue, 0, NowMs + long.MinValue, NowMs + long.MinValue + 1, NowMs + long.MaxValue, NowMs - long.MaxValue),
        Gen.Long[-2 * (long)Freshness.TotalMilliseconds, 2 * (long)Freshness.TotalMilliseconds].Select(offset => NowMs + offset));

    private static readonly byte[] Magic = [(byte)'I', (byte)'R', (byte)'I', (byte)'S', 2];

    [Fact]
    public Task Mutated_and_random_datagrams_are_never_accepted_and_never_throw() =>
        Fuzzing.RunAsync(output, Target, Gen.Select(Mutations.Of(Fresh, beacon => beacon.Encode(Key)), Mutations.Random(Beacon.MaxSize + 16, Magic), Gen.Int[0, 7]), sample =>
        {
            var (mutated, random, pick) = sample;
            var bytes = pick == 0 ? random : mutated.Bytes;
            var verdict = Check(bytes, out var beacon);
            // A splice may give back the other valid beacon whole: a replay, which a fresh filter rightly accepts.
            if (verdict == BeaconVerdict.Accepted && (pick == 0 || !(mutated.Unchanged || mutated.IsOther)))
            {
                throw new FuzzFailure($"A changed datagram was accepted as {beacon}.");
            }

            if (pick != 0 && mutated.Unchanged && (verdict != BeaconVerdict.Accepted || beacon != mutated.Value))
            {
                throw new FuzzFailure($"An unchanged fresh beacon was not accepted as itself: {verdict}, {beacon}.");
            }
        });

    [Fact]
    public Task Beacons_sent_at_any_time_or_under_another_key_are_judged_without_throwing() =>
        Fuzzing.RunAsync(output, "BeaconFilter.Check (any send time, either key)", Gen.Select(Fresh, AnyTime, Gen.Bool), sample =>
        {
            var (fresh, sent, foreign) = sample;
            var beacon = fresh with { SentUnixMs = sent };
            var verdict = Check(beacon.Encode(foreign ? OtherKey : Key), out _);
            var expected = foreign ? BeaconVerdict.Foreign
                : (Int128)NowMs - sent is var age && Int128.Abs(age) <= (long)Freshness.TotalMilliseconds ? BeaconVerdict.Accepted
                : BeaconVerdict.Stale;
            if (verdict != expected)
            {
                throw new FuzzFailure($"A beacon sent at {sent} (now {NowMs}) was {verdict}, not {expected}.");
            }
        });

    /// <summary>Found by the fuzzer (seed fp6ZxsGvjzm1): the filter computed <c>Math.Abs(now - sent)</c>, which
    /// throws <see cref="OverflowException"/> when <c>now - sent</c> wraps to <see cref="long.MinValue"/>, ending the
    /// listener's receive loop. Only a holder of the network key can MAC such a beacon.</summary>
    [Fact]
    public void A_beacon_sent_where_now_minus_sent_overflows_is_stale_not_an_overflow()
    {
        var beacon = new Beacon(new NodeHandle(new NodeKey(1), new NodeAddress("tcp://10.0.0.1:1")), true, string.Empty, NowMs + long.MinValue, 1);
        Assert.Equal(BeaconVerdict.Stale, Check(beacon.Encode(Key), out _));
    }

    private static BeaconVerdict Check(byte[] datagram, out Beacon beacon)
    {
        var filter = new BeaconFilter(Key, Freshness, new FakeTimeProvider(Now));
        var before = GC.GetAllocatedBytesForCurrentThread();
        var verdict = filter.Check(datagram, out beacon);
        Fuzzing.CheckAllocation(Target, GC.GetAllocatedBytesForCurrentThread() - before, datagram.Length);
        return verdict;
    }
}
