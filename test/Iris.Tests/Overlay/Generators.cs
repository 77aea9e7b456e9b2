using CsCheck;
using Iris.Overlay;

namespace Iris.Tests.Overlay;

/// <summary>CsCheck generators shared by the overlay's property tests.</summary>
internal static class Generators
{
    /// <summary>Uniformly random keys.</summary>
    public static readonly Gen<NodeKey> Key =
        Gen.Select(Gen.ULong, Gen.ULong, (hi, lo) => new NodeKey(new UInt128(hi, lo)));
}
