namespace Iris.Tests.Support;

/// <summary>Where the repository and the build outputs of its programs are, seen from the running tests.</summary>
internal static class RepositoryPaths
{
    public static string Root { get; } = FindRoot();

    public static string Configuration { get; } =
        AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";

    /// <summary>The built dll of a program project under <paramref name="folder"/> (src or test).</summary>
    public static string Program(string folder, string project)
    {
        var dll = Path.Combine(Root, folder, project, "bin", Configuration, "net10.0", project + ".dll");
        Assert.True(File.Exists(dll), $"{project} is not built at {dll}");
        return dll;
    }

    private static string FindRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Iris.Orleans.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("Iris.Orleans.sln not found above " + AppContext.BaseDirectory);
    }
}
