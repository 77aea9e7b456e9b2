using Microsoft.Extensions.Logging;

namespace Iris.Silo;

/// <summary>The log events of the Iris.Silo program (ids in the silo hosting range of <c>Iris.Diagnostics.Log</c>).</summary>
internal static partial class ProgramLog
{
    [LoggerMessage(EventId = 104, Level = LogLevel.Warning, Message = "Iris silo {Silo} was declared dead: exiting with code {ExitCode} so that its supervisor starts it again as a new silo")]
    public static partial void ExitingDeclaredDead(ILogger logger, string silo, int exitCode);

    [LoggerMessage(EventId = 105, Level = LogLevel.Warning, Message = "Iris silo {Silo} was declared dead: starting a new silo in this process (development mode; restart {Restart})")]
    public static partial void RestartingDeclaredDead(ILogger logger, string silo, int restart);

    [LoggerMessage(EventId = 106, Level = LogLevel.Critical, Message = "Iris silo was declared dead and did not stop within {Limit}: ending the process")]
    public static partial void DeadSiloStuck(ILogger logger, TimeSpan limit);

    [LoggerMessage(EventId = 107, Level = LogLevel.Information, Message = """
        Iris node ready: it {How}
          network key     {Fingerprint} ({KeySource})
          overlay node    {Node}
          silo            {Silo} (gateway for clients on port {GatewayPort})
          relay           {Relay}
          HTTP            {Http}
          telemetry       {Telemetry}
        """)]
    public static partial void Ready(ILogger logger, string how, string fingerprint, string keySource, string node, string silo, int gatewayPort, string relay, string http, string telemetry);
}
