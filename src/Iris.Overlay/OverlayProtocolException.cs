namespace Iris.Overlay;

/// <summary>
/// A peer sent bytes that are not a valid overlay message: truncated, oversized, of an unknown type, or with a field
/// out of range. The connection that carried it cannot be trusted further and is closed; check that both nodes run
/// compatible Iris versions.
/// </summary>
public sealed class OverlayProtocolException : Exception
{
    /// <summary>Creates the exception with a message saying what was wrong.</summary>
    public OverlayProtocolException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the error that revealed the problem.</summary>
    public OverlayProtocolException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
