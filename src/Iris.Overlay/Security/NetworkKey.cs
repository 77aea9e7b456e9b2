using System.Security.Cryptography;

namespace Iris.Overlay.Security;

/// <summary>
/// The 256-bit secret shared by every node of one Iris network. Only holders can complete a handshake, so only they
/// can join the ring or read its traffic; beacons are MACed with it too, so two networks never merge.
/// </summary>
public sealed class NetworkKey
{
    /// <summary>Length of a network key in bytes.</summary>
    public const int Size = 32;

    private const string HowToCreate =
        "Create one with `openssl rand -base64 32` (or any 32 random bytes, base64-encoded) and give every node the same "
        + "value in Iris:Network:Key, or point Iris:Network:KeyFile at a file holding it.";

    private readonly byte[] _bytes;

    private NetworkKey(byte[] bytes) => _bytes = bytes;

    /// <summary>The key's bytes. Keep them secret.</summary>
    public ReadOnlySpan<byte> Bytes => _bytes;

    /// <summary>A short, non-secret fingerprint for logs: the first 8 hex digits of SHA-256 of the key.</summary>
    public string Fingerprint => Convert.ToHexStringLower(SHA256.HashData(_bytes))[..8];

    /// <summary>A new random key.</summary>
    public static NetworkKey Generate() => new(RandomNumberGenerator.GetBytes(Size));

    /// <summary>Takes a key from exactly 32 bytes.</summary>
    public static NetworkKey FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Size)
        {
            throw new NetworkKeyException($"A network key is {Size} bytes; this one has {bytes.Length}. {HowToCreate}");
        }

        return new NetworkKey(bytes.ToArray());
    }

    /// <summary>Parses a base64 key, as given in <c>Iris:Network:Key</c>.</summary>
    public static NetworkKey Parse(string base64)
    {
        ArgumentNullException.ThrowIfNull(base64);
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(base64.Trim());
        }
        catch (FormatException)
        {
            throw new NetworkKeyException($"The network key is not valid base64. {HowToCreate}");
        }

        return FromBytes(bytes);
    }

    /// <summary>Reads a base64 key from a file.</summary>
    public static NetworkKey ReadFile(string path)
    {
        if (!File.Exists(path))
        {
            throw new NetworkKeyException($"The network key file '{path}' does not exist. {HowToCreate}");
        }

        return Parse(File.ReadAllText(path));
    }

    /// <summary>
    /// The development key: read from <paramref name="path"/>, or created there once (readable by the user only) so
    /// that every node started by this user on this machine shares it.
    /// </summary>
    public static NetworkKey LoadOrCreateDevelopmentKey(string path)
    {
        if (File.Exists(path))
        {
            return ReadFile(path);
        }

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var key = Generate();
        var temporary = path + "." + Environment.ProcessId + ".tmp";
        File.WriteAllText(temporary, Convert.ToBase64String(key._bytes));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        try
        {
            // Two nodes starting at once must end up with the same key: the first to move its file in wins.
            File.Move(temporary, path, overwrite: false);
        }
        catch (IOException) when (File.Exists(path))
        {
            File.Delete(temporary);
        }

        return ReadFile(path);
    }

    /// <summary>Where the development key lives: <c>~/.iris/network-key</c>.</summary>
    public static string DefaultDevelopmentKeyPath =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".iris", "network-key");

    /// <inheritdoc />
    public override string ToString() => $"network key {Fingerprint}";
}

/// <summary>The network key is missing, malformed or of the wrong length. The message says how to make one.</summary>
public sealed class NetworkKeyException : Exception
{
    /// <summary>Creates the exception.</summary>
    public NetworkKeyException(string message)
        : base(message)
    {
    }
}
