namespace Iris.Cli.Bench;

/// <summary>Message bodies for benchmarks.</summary>
internal static class Payloads
{
    public static byte[] Random(int size)
    {
        var bytes = new byte[size];
        System.Random.Shared.NextBytes(bytes);
        return bytes;
    }
}
