namespace CloudMemory.Dashboard;

/// <summary>The <c>CloudMemory:Dashboard</c> section.</summary>
public sealed class DashboardOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "CloudMemory:Dashboard";

    /// <summary>Where the dashboard's pages are served.</summary>
    public const string PathBase = "/ui";

    /// <summary>
    /// Base URL of the CloudMemory HTTP API the dashboard reads (a gateway in front of the Dapr apps,
    /// or an embedded host). Unset: the host serving the dashboard, at its own listening address.
    /// </summary>
    public Uri? ApiBaseUrl { get; set; }

    /// <summary>Serve the dashboard at all (default true).</summary>
    public bool Enabled { get; set; } = true;
}
