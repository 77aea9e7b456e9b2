using System.Runtime.InteropServices;

namespace Iris.Members;

/// <summary>
/// CPU time of the calling thread, from the operating system (Linux and macOS: <c>clock_gettime</c> with the thread's
/// CPU clock; Windows: <c>GetThreadTimes</c>, which advances by scheduler ticks, so short handlers read as free until
/// the ticks add up). Where neither is there, <see cref="IsAvailable"/> is false and no CPU cost is measured.
/// </summary>
internal static class ThreadCpu
{
    private const int LinuxThreadCpuClock = 3;
    private const int MacThreadCpuClock = 16;

    private static readonly int Clock = OperatingSystem.IsMacOS() ? MacThreadCpuClock : LinuxThreadCpuClock;

    /// <summary>Whether this platform tells a thread's CPU time.</summary>
    public static bool IsAvailable { get; } = Probe();

    /// <summary>The calling thread's CPU time so far, or zero where it cannot be told.</summary>
    public static TimeSpan Now()
    {
        if (!IsAvailable)
        {
            return TimeSpan.Zero;
        }

        if (OperatingSystem.IsWindows())
        {
            return GetThreadTimes(GetCurrentThread(), out _, out _, out var kernel, out var user)
                ? TimeSpan.FromTicks(kernel + user)
                : TimeSpan.Zero;
        }

        return clock_gettime(Clock, out var time) == 0
            ? TimeSpan.FromTicks((time.Seconds * TimeSpan.TicksPerSecond) + (time.Nanoseconds / 100))
            : TimeSpan.Zero;
    }

    private static bool Probe()
    {
        try
        {
            if (OperatingSystem.IsWindows())
            {
                return GetThreadTimes(GetCurrentThread(), out _, out _, out _, out _);
            }

            return (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()) && clock_gettime(Clock, out _) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public nint Seconds;
        public nint Nanoseconds;
    }

#pragma warning disable SYSLIB1054 // Blittable signatures: DllImport needs no generated marshalling (and no unsafe code).
    [DllImport("libc", SetLastError = false)]
    private static extern int clock_gettime(int clockId, out Timespec time);

    [DllImport("kernel32", SetLastError = false)]
    [return: MarshalAs(UnmanagedType.Bool)]
    private static extern bool GetThreadTimes(nint thread, out long creation, out long exit, out long kernel, out long user);

    [DllImport("kernel32", SetLastError = false)]
    private static extern nint GetCurrentThread();
#pragma warning restore SYSLIB1054
}
