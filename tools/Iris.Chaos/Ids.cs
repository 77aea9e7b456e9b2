namespace Iris.Chaos;

/// <summary>Request and broadcast ids: a GUID's 16 bytes at the start of the payload, written as 32 hex digits.</summary>
internal static class Ids
{
    public const int Bytes = 16;
    public const int Length = 32;

    public static byte[] NewPayload(out string id)
    {
        var guid = Guid.NewGuid();
        id = guid.ToString("N");
        return guid.ToByteArray();
    }

    public static string Format(ReadOnlySpan<byte> payload) =>
        payload.Length >= Bytes ? new Guid(payload[..Bytes]).ToString("N") : Convert.ToHexString(payload).PadLeft(Length, '0');
}
