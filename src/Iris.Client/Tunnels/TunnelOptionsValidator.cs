using Microsoft.Extensions.Options;

namespace Iris.Tunnels;

/// <summary>Checks <see cref="TunnelOptions"/> at start-up.</summary>
internal sealed class TunnelOptionsValidator : IValidateOptions<TunnelOptions>
{
    public ValidateOptionsResult Validate(string? name, TunnelOptions options)
    {
        var errors = new List<string>();
        if (options.WindowBytes < 2 * TunnelOptions.ChunkBytes)
        {
            errors.Add($"Iris:Tunnels:WindowBytes must be at least {2 * TunnelOptions.ChunkBytes}; it is {options.WindowBytes}.");
        }

        if (options.MaxMessageBytes < 1)
        {
            errors.Add($"Iris:Tunnels:MaxMessageBytes must be positive; it is {options.MaxMessageBytes}.");
        }

        if (options.KeepAliveInterval <= TimeSpan.Zero || options.KeepAliveTimeout <= TimeSpan.Zero)
        {
            errors.Add($"Iris:Tunnels:KeepAliveInterval and KeepAliveTimeout must be positive; they are {options.KeepAliveInterval} and {options.KeepAliveTimeout}.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
