namespace CloudMemory.Dapr.Tests;

public static class RepoPaths
{
    /// <summary>The repository root (the directory holding CloudMemory.sln).</summary>
    public static string Root { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "CloudMemory.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("CloudMemory.sln not found above " + AppContext.BaseDirectory);
    }
}
