using Microsoft.Playwright;

namespace CloudMemory.Dashboard.Tests.Infrastructure;

/// <summary>
/// One Chromium (Debian's, never a downloaded one) and the hosts every dashboard test shares: the
/// embedded host on in-memory stores, on PostgreSQL, and with API-key authentication.
/// </summary>
public sealed class DashboardFixture : IAsyncLifetime
{
    public const string ChromiumPath = "/usr/bin/chromium";

    /// <summary>Admin keys of the API-key host's two tenants.</summary>
    public const string AdminKeyA = "dashboard-test-admin-key-of-tenant-a-0123456789";

    public const string AdminKeyB = "dashboard-test-admin-key-of-tenant-b-0123456789";

    private readonly Dictionary<Store, DashboardHost> _hosts = [];
    private readonly Lock _gate = new();
    private DashboardHost? _secured;
    private DashboardHost? _jwt;

    /// <summary>The issuer the JWT host trusts (mints tokens for any tenant and agent).</summary>
    public CloudMemory.Security.Tests.Infrastructure.TestJwt Tokens { get; } = new();

    public IPlaywright Playwright { get; private set; } = default!;

    public IBrowser Browser { get; private set; } = default!;

    public async Task InitializeAsync()
    {
        if (!File.Exists(ChromiumPath))
        {
            throw new InvalidOperationException($"{ChromiumPath} is missing: apt-get install -y chromium (the dashboard tests drive Debian's Chromium).");
        }
        Playwright = await Microsoft.Playwright.Playwright.CreateAsync();
        Browser = await Playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox"],
        });
    }

    /// <summary>The host on <paramref name="store"/>, started on first use.</summary>
    public DashboardHost Host(Store store)
    {
        lock (_gate)
        {
            if (!_hosts.TryGetValue(store, out var host))
            {
                host = new DashboardHost(store);
                _hosts[store] = host;
            }
            return host;
        }
    }

    /// <summary>The in-memory host with API-key authentication and an admin key for tenants a and b.</summary>
    public DashboardHost Secured()
    {
        lock (_gate)
        {
            return _secured ??= new DashboardHost(Store.InMemory, new Dictionary<string, string?>
            {
                ["CloudMemory:Auth:Mode"] = "apikey",
                ["CloudMemory:Auth:AdminKeys:0:Tenant"] = "tenant-a",
                ["CloudMemory:Auth:AdminKeys:0:Key"] = AdminKeyA,
                ["CloudMemory:Auth:AdminKeys:1:Tenant"] = "tenant-b",
                ["CloudMemory:Auth:AdminKeys:1:Key"] = AdminKeyB,
            });
        }
    }

    /// <summary>The in-memory host with JWT authentication, trusting <see cref="Tokens"/>.</summary>
    public DashboardHost JwtSecured()
    {
        lock (_gate)
        {
            if (_jwt is null)
            {
                var settings = new Dictionary<string, string?>();
                Tokens.AddSettings(settings);
                _jwt = new DashboardHost(Store.InMemory, settings);
            }
            return _jwt;
        }
    }

    /// <summary>A fresh browser context (own cookies) and page.</summary>
    public async Task<IPage> NewPageAsync()
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        context.SetDefaultTimeout(15_000);
        return await context.NewPageAsync();
    }

    /// <summary>
    /// Saves a screenshot of <paramref name="page"/> as docs/images/dashboard-{name}.png when
    /// CLOUDMEMORY_SCREENSHOTS=1 (so CI does not write into the checkout).
    /// </summary>
    public static async Task ScreenshotAsync(IPage page, string name)
    {
        if (Environment.GetEnvironmentVariable("CLOUDMEMORY_SCREENSHOTS") != "1")
        {
            return;
        }
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "CloudMemory.sln")))
        {
            dir = dir.Parent;
        }
        var images = Path.Combine(dir?.FullName ?? throw new InvalidOperationException("CloudMemory.sln not found"), "docs", "images");
        Directory.CreateDirectory(images);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(images, $"dashboard-{name}.png"), FullPage = true });
    }

    public async Task DisposeAsync()
    {
        await Browser.DisposeAsync();
        Playwright.Dispose();
        foreach (var host in _hosts.Values)
        {
            await host.DisposeAsync();
        }
        if (_secured is not null)
        {
            await _secured.DisposeAsync();
        }
        if (_jwt is not null)
        {
            await _jwt.DisposeAsync();
        }
    }
}

[CollectionDefinition(Name)]
public sealed class DashboardCollection : ICollectionFixture<DashboardFixture>
{
    public const string Name = "dashboard";
}
