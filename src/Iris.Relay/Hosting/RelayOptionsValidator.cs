using System.Net;
using Microsoft.Extensions.Options;

namespace Iris.Relay.Hosting;

/// <summary>Checks <see cref="RelayOptions"/> at start-up, naming the setting that is wrong.</summary>
internal sealed class RelayOptionsValidator : IValidateOptions<RelayOptions>
{
    public ValidateOptionsResult Validate(string? name, RelayOptions options)
    {
        var errors = new List<string>();
        if (!IPAddress.TryParse(options.Address, out _))
        {
            errors.Add($"Iris:Relay:Address must be an IP address of this machine (default 127.0.0.1); it is '{options.Address}'.");
        }

        if (options.Port is < 0 or > 65535)
        {
            errors.Add($"Iris:Relay:Port must be a port number (0 for any free one); it is {options.Port}.");
        }

        if (options.MaxMessageBytes < 1024)
        {
            errors.Add($"Iris:Relay:MaxMessageBytes must be at least 1024; it is {options.MaxMessageBytes}.");
        }

        if (options.MaxNameBytes < 16)
        {
            errors.Add($"Iris:Relay:MaxNameBytes must be at least 16; it is {options.MaxNameBytes}.");
        }

        if (options.MaxQueuedBytes < 2L * options.MaxMessageBytes)
        {
            errors.Add($"Iris:Relay:MaxQueuedBytes must be at least twice Iris:Relay:MaxMessageBytes ({2L * options.MaxMessageBytes}); it is {options.MaxQueuedBytes}.");
        }

        if (options.MaxPendingRequests < 1 || options.MemberConcurrency < 1 || options.MaxTunnels < 1)
        {
            errors.Add($"Iris:Relay:MaxPendingRequests, MemberConcurrency and MaxTunnels must be positive; they are {options.MaxPendingRequests}, {options.MemberConcurrency} and {options.MaxTunnels}.");
        }

        if (options.TunnelBufferBytes < 2 * 64 * 1024)
        {
            errors.Add($"Iris:Relay:TunnelBufferBytes must be at least {2 * 64 * 1024} (two chunks); it is {options.TunnelBufferBytes}.");
        }

        if (options.TunnelConfirmTimeout <= TimeSpan.Zero || options.HandshakeTimeout <= TimeSpan.Zero)
        {
            errors.Add($"Iris:Relay:TunnelConfirmTimeout and HandshakeTimeout must be positive; they are {options.TunnelConfirmTimeout} and {options.HandshakeTimeout}.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
