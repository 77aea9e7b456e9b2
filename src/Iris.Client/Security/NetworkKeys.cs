using Iris.Overlay.Security;
using Microsoft.Extensions.Configuration;

namespace Iris.Security;

/// <summary>Where a process's network key comes from: one rule for silos and clients.</summary>
internal static class NetworkKeys
{
    /// <summary>
    /// <c>Iris:Network:Key</c> (base64), else <c>Iris:Network:KeyFile</c>; in development with neither, the user's
    /// development key (<c>~/.iris/network-key</c>, created on first use), so every node a developer starts joins the
    /// same network. In production a missing key stops the silo with a message saying how to create one.
    /// </summary>
    public static NetworkKey Resolve(IConfiguration configuration, bool development) =>
        Resolve(configuration["Iris:Network:Key"], configuration["Iris:Network:KeyFile"], development ? DevelopmentPath(configuration) : null);

    /// <summary>The key given inline (base64), else the one in <paramref name="file"/>, else the development key at
    /// <paramref name="developmentPath"/> (created on first use); with none of them, an error saying how to make one.</summary>
    public static NetworkKey Resolve(string? key, string? file, string? developmentPath)
    {
        if (key is { Length: > 0 })
        {
            return NetworkKey.Parse(key);
        }

        if (file is { Length: > 0 })
        {
            return NetworkKey.ReadFile(file);
        }

        if (developmentPath is not null)
        {
            return NetworkKey.LoadOrCreateDevelopmentKey(developmentPath);
        }

        throw new NetworkKeyException(
            "No network key is configured. A production node needs Iris:Network:Key (base64 of 32 random bytes, e.g. from "
            + "`openssl rand -base64 32`) or Iris:Network:KeyFile (a file holding it), the same on every node of the network.");
    }

    /// <summary>Where the development key is kept: <c>Iris:Network:DevelopmentKeyFile</c>, or <c>~/.iris/network-key</c>.</summary>
    public static string DevelopmentPath(IConfiguration configuration) =>
        configuration["Iris:Network:DevelopmentKeyFile"] is { Length: > 0 } custom ? custom : NetworkKey.DefaultDevelopmentKeyPath;
}
