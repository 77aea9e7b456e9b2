using Iris.Grains.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Iris.Hosting;

/// <summary>
/// Orleans' fatal-error handler with one case taken out. A silo that reads the membership table and finds its own row
/// marked Dead (the other silos declared it dead, for example while a partition cut it off from the majority) calls
/// <see cref="IFatalErrorHandler.OnFatalException"/>, and Orleans' own handler then ends the process with
/// <see cref="Environment.FailFast(string?)"/>: SIGABRT, exit code 134 on Linux, a crash dump where those are enabled.
/// This handler instead records the declaration in <see cref="SiloDeath"/>, logs it and stops the host, so the program
/// chooses what happens next. Every other fatal error goes to the handler registered before this one (Orleans' by
/// default). Stopping is safe: Orleans writes no status for a silo whose row says Dead, the other silos refuse its
/// calls, and the silo never comes back under the same generation.
/// </summary>
internal sealed class DeclaredDeadHandler(IFatalErrorHandler inner, SiloDeath death, IServiceProvider services, ILogger<DeclaredDeadHandler> logger)
    : IFatalErrorHandler
{
    /// <summary>How Orleans' membership words the context when the local silo finds itself dead
    /// (<c>MembershipTableManager.KillMyselfLocally</c>).</summary>
    internal const string DeclaredDeadContext = "I have been told I am dead";

    public bool IsUnexpected(Exception exception) => inner.IsUnexpected(exception);

    public void OnFatalException(object? sender = null, string? context = null, Exception? exception = null)
    {
        if (exception is not null || !IsDeclaredDead(context))
        {
            inner.OnFatalException(sender, context, exception);
            return;
        }

        if (death.TryDeclare(context ?? "its row in the membership table says Dead"))
        {
            var silo = services.GetRequiredService<ILocalSiloDetails>();
            SiloLog.DeclaredDead(logger, silo.SiloAddress.ToString(), death.Declared.Result);

            // Off Orleans' membership thread: stopping runs the host's callbacks.
            var lifetime = services.GetRequiredService<IHostApplicationLifetime>();
            _ = Task.Run(lifetime.StopApplication);
        }
    }

    private bool IsDeclaredDead(string? context) =>
        context?.Contains(DeclaredDeadContext, StringComparison.Ordinal) == true
        || SiloDeath.InOwnView(services);
}
