using System.Net;

namespace Iris.Silo;

/// <summary>The node's HTTP endpoint: health (and the pages built on it). Bound from <c>Iris:Http</c>.</summary>
public sealed class IrisHttpOptions
{
    /// <summary>The configuration section the options are bound from.</summary>
    public const string SectionName = "Iris:Http";

    /// <summary>The port when none is set; a node that finds it taken (a second node on the machine) takes a free one.</summary>
    public const int DefaultPort = 8080;

    /// <summary>Whether the node serves HTTP. Default true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The address the endpoint listens on. Default 127.0.0.1: the endpoint answers this machine only.</summary>
    public string Address { get; set; } = "127.0.0.1";

    /// <summary>The port; null for <see cref="DefaultPort"/>, or a free one when that is taken.</summary>
    public int? Port { get; set; }

    /// <summary>Whether the Orleans dashboard is served at <c>/dashboard</c>. Default true. It profiles every grain call
    /// (a filter that times each call), so a node tuned for the last per cent may switch it off; the Iris page at
    /// <c>/iris</c> and health stay.</summary>
    public bool Dashboard { get; set; } = true;

    /// <summary>The problems with these settings, each naming its setting; empty when there are none.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (!IPAddress.TryParse(Address, out _))
        {
            problems.Add($"{SectionName}:Address must be an IP address; it is '{Address}'.");
        }

        if (Port is < 1 or > 65535)
        {
            problems.Add($"{SectionName}:Port must be between 1 and 65535; it is {Port}.");
        }

        return problems;
    }
}
