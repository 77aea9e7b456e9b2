using System.Text.RegularExpressions;
using Iris.Tests.Support;

namespace Iris.Tests.Silo;

/// <summary>The example in the Iris.Grains.Abstractions README is the sample program, which the solution builds.</summary>
public class ReadmeExampleTests
{
    [Fact]
    public void The_readme_example_is_the_sample_program_word_for_word()
    {
        var readme = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "src", "Iris.Grains.Abstractions", "README.md"));
        var sample = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "samples", "Iris.Samples.Patterns", "Program.cs"));
        var example = Regex.Match(readme, "```csharp\n(.*?)```", RegexOptions.Singleline);
        Assert.True(example.Success, "the README has no C# example");
        Assert.Equal(sample.ReplaceLineEndings("\n"), example.Groups[1].Value.ReplaceLineEndings("\n"));
        Assert.Contains("OpenTunnelAsync", sample);
    }

    [Theory]
    [InlineData("samples", "Iris.Samples.Patterns")]
    [InlineData("src", "Iris.Client")]
    public void An_orleans_client_application_does_not_carry_the_orleans_server_even_transitively(string folder, string project)
    {
        // The packages restore resolved for the project, direct and transitive (NuGet's own record of them).
        var assets = Path.Combine(RepositoryPaths.Root, folder, project, "obj", "project.assets.json");
        Assert.True(File.Exists(assets), $"{project} has not been restored ({assets} is missing)");
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(assets));
        var libraries = json.RootElement.GetProperty("libraries").EnumerateObject().Select(l => l.Name.Split('/')[0]).ToList();
        Assert.Contains("Microsoft.Orleans.Client", libraries);
        Assert.DoesNotContain("Microsoft.Orleans.Server", libraries);
        Assert.DoesNotContain("Microsoft.Orleans.Runtime", libraries);
        Assert.DoesNotContain("Iris.Grains", libraries);
    }
}
