using System.Security.Cryptography;
using System.Threading.RateLimiting;
using CloudMemory.BuildingBlocks.Hosting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.IdentityModel.Tokens;

namespace CloudMemory.BuildingBlocks.Security;

/// <summary>Authentication (none, API keys, JWT), the listen-address guard and the per-tenant rate limit.</summary>
public static class SecurityServiceCollectionExtensions
{
    /// <summary>Reads <c>CloudMemory:Auth</c> and <c>CloudMemory:RateLimit</c> and registers what they ask for.</summary>
    public static IHostApplicationBuilder AddCloudMemorySecurity(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        var auth = ReadAuthOptions(builder.Configuration);
        services.AddSingleton(auth);

        var connectionString = builder.Configuration.GetConnectionString("CloudMemory");
        services.TryAddSingleton<IApiKeyStore>(_ => string.IsNullOrWhiteSpace(connectionString)
            ? new InMemoryApiKeyStore()
            : new PostgresApiKeyStore(connectionString));
        services.TryAddSingleton<ApiKeys>();

        var authentication = services.AddAuthentication(auth.Mode == AuthMode.Jwt ? JwtBearerDefaults.AuthenticationScheme : ApiKeyAuthenticationHandler.SchemeName);
        authentication.AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        if (auth.Mode == AuthMode.Jwt)
        {
            authentication.AddJwtBearer(o => ConfigureJwt(o, auth.Jwt));
        }
        services.AddCloudMemoryRateLimit(ReadRateLimitOptions(builder.Configuration));
        return builder;
    }

    /// <summary>Authentication (in modes other than none), then the rate limit.</summary>
    public static WebApplication UseCloudMemorySecurity(this WebApplication app)
    {
        var auth = app.Services.GetRequiredService<AuthOptions>();
        ListenAddressGuard.Check(auth, app.Configuration, app.Services.GetService<IServer>(), app.Logger);
        if (auth.Mode != AuthMode.None)
        {
            app.UseAuthentication();
            // A header that disagrees with the credential is refused on every request, whether or
            // not the endpoint reads it: it is a confused or forged caller either way.
            app.Use(async (http, next) =>
            {
                if (CallerIdentity.From(http.User) is { } identity
                    && (Disagrees(http, Tenant.HeaderName, identity.Tenant) ?? Disagrees(http, Tenant.AgentHeaderName, identity.Agent)) is { } code)
                {
                    var header = code == "tenant-mismatch" ? Tenant.HeaderName : Tenant.AgentHeaderName;
                    await Problems.Forbidden(code, $"{header} differs from the credential's.").ExecuteAsync(http);
                    return;
                }
                await next(http);
            });
        }
        if (app.Services.GetRequiredService<RateLimitOptions>().PermitsPerSecond > 0)
        {
            app.UseRateLimiter();
        }
        return app;
    }

    private static string? Disagrees(HttpContext http, string header, string? expected)
    {
        var value = http.Request.Headers[header].ToString();
        return value.Length > 0 && value != expected ? (header == Tenant.HeaderName ? "tenant-mismatch" : "agent-mismatch") : null;
    }

    private static AuthOptions ReadAuthOptions(IConfiguration configuration)
    {
        var section = configuration.GetSection(AuthOptions.SectionName);
        var mode = section["Mode"];
        var options = new AuthOptions
        {
            Mode = string.IsNullOrWhiteSpace(mode) ? AuthMode.None : mode.Trim().ToLowerInvariant() switch
            {
                "none" => AuthMode.None,
                "apikey" => AuthMode.ApiKey,
                "jwt" => AuthMode.Jwt,
                _ => throw new StartupConfigurationException($"{AuthOptions.SectionName}:Mode", mode, "none, apikey or jwt"),
            },
            AllowAnonymousNonLoopback = ReadBool(section, nameof(AuthOptions.AllowAnonymousNonLoopback)),
        };
        section.GetSection(nameof(AuthOptions.AdminKeys)).Bind(options.AdminKeys);
        section.GetSection(nameof(AuthOptions.Jwt)).Bind(options.Jwt);
        if (options.Mode == AuthMode.Jwt)
        {
            var jwt = $"{AuthOptions.SectionName}:Jwt";
            if (options.Jwt.Issuers.Count == 0)
            {
                throw new StartupConfigurationException($"{jwt}:Issuers", "(empty)", "at least one accepted issuer");
            }
            if (options.Jwt.Audiences.Count == 0)
            {
                throw new StartupConfigurationException($"{jwt}:Audiences", "(empty)", "at least one accepted audience");
            }
            if (options.Jwt.SigningKeys.Count == 0 && string.IsNullOrWhiteSpace(options.Jwt.Authority))
            {
                throw new StartupConfigurationException($"{jwt}:SigningKeys", "(empty)", "at least one signing key, or an Authority");
            }
            if (options.Jwt.ClockSkewSeconds is < 0 or > 3600)
            {
                throw new StartupConfigurationException($"{jwt}:ClockSkewSeconds", options.Jwt.ClockSkewSeconds.ToString(), "0-3600");
            }
        }
        return options;
    }

    private static RateLimitOptions ReadRateLimitOptions(IConfiguration configuration)
    {
        var options = new RateLimitOptions();
        var section = configuration.GetSection(RateLimitOptions.SectionName);
        options.PermitsPerSecond = ReadInt(section, nameof(RateLimitOptions.PermitsPerSecond), 0, 1_000_000);
        options.Burst = ReadInt(section, nameof(RateLimitOptions.Burst), 0, 10_000_000);
        return options;
    }

    private static void AddCloudMemoryRateLimit(this IServiceCollection services, RateLimitOptions options)
    {
        services.AddSingleton(options);
        if (options.PermitsPerSecond <= 0)
        {
            return;
        }
        var burst = options.Burst > 0 ? options.Burst : options.PermitsPerSecond * 2;
        services.AddRateLimiter(limiter =>
        {
            limiter.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(http =>
                PartitionKey(http) is { } tenant
                    ? RateLimitPartition.GetTokenBucketLimiter(tenant, _ => new TokenBucketRateLimiterOptions
                    {
                        TokenLimit = burst,
                        TokensPerPeriod = options.PermitsPerSecond,
                        ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                        QueueLimit = 0,
                        AutoReplenishment = true,
                    })
                    : RateLimitPartition.GetNoLimiter("unlimited"));
            limiter.OnRejected = async (context, ct) =>
            {
                if (context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter))
                {
                    context.HttpContext.Response.Headers.RetryAfter = ((int)Math.Ceiling(retryAfter.TotalSeconds)).ToString();
                }
                await Problems.Create(StatusCodes.Status429TooManyRequests, "rate-limited", "Too many requests.",
                    $"This tenant exceeds {options.PermitsPerSecond} requests per second (burst {burst}); retry later.").ExecuteAsync(context.HttpContext);
            };
        });
    }

    // Health, readiness, OpenAPI and sidecar callbacks are not a tenant's traffic.
    private static string? PartitionKey(HttpContext http)
    {
        var path = http.Request.Path;
        if (!path.StartsWithSegments("/v1"))
        {
            return null;
        }
        if (CallerIdentity.From(http.User) is { Tenant: { } tenant })
        {
            return tenant;
        }
        var header = http.Request.Headers[Tenant.HeaderName].ToString();
        return header.Length == 0 ? Tenant.Default : header.Length > Ids.MaxLength ? header[..Ids.MaxLength] : header;
    }

    private static void ConfigureJwt(JwtBearerOptions o, JwtOptions jwt)
    {
        o.MapInboundClaims = false;
        if (!string.IsNullOrWhiteSpace(jwt.Authority))
        {
            o.Authority = jwt.Authority;
        }
        o.TokenValidationParameters = new TokenValidationParameters
        {
            ValidIssuers = jwt.Issuers,
            ValidAudiences = jwt.Audiences,
            ValidateIssuer = true,
            ValidateAudience = true,
            ValidateLifetime = true,
            RequireExpirationTime = true,
            ValidateIssuerSigningKey = true,
            IssuerSigningKeys = jwt.SigningKeys.Select((key, i) => SigningKey(key, $"{AuthOptions.SectionName}:Jwt:SigningKeys:{i}")).ToList(),
            ClockSkew = TimeSpan.FromSeconds(jwt.ClockSkewSeconds),
        };
        o.Events = new JwtBearerEvents
        {
            // The configured claims become CloudMemory's own, so every check reads one identity shape.
            OnTokenValidated = context =>
            {
                var principal = context.Principal!;
                var tenant = principal.FindFirst(jwt.TenantClaim)?.Value;
                var agent = principal.FindFirst(jwt.AgentClaim)?.Value;
                var admin = !string.IsNullOrEmpty(jwt.AdminClaim) && principal.FindAll(jwt.AdminClaim).Any(c => string.Equals(c.Value, jwt.AdminClaimValue, StringComparison.Ordinal));
                var identity = new CallerIdentity(tenant, agent, IsAdmin: admin, KeyId: principal.FindFirst("jti")?.Value);
                context.Principal = identity.ToPrincipal(JwtBearerDefaults.AuthenticationScheme);
                return Task.CompletedTask;
            },
            // 401 problem details come from Tenant.From when an endpoint needs the caller.
            OnChallenge = context =>
            {
                context.HandleResponse();
                return Task.CompletedTask;
            },
        };
    }

    private static SecurityKey SigningKey(string configured, string key)
    {
        var text = configured.Trim();
        if (text.StartsWith("-----BEGIN", StringComparison.Ordinal))
        {
            try
            {
                var rsa = RSA.Create();
                rsa.ImportFromPem(text);
                return new RsaSecurityKey(rsa);
            }
            catch (ArgumentException)
            {
                var ec = ECDsa.Create();
                try
                {
                    ec.ImportFromPem(text);
                }
                catch (ArgumentException)
                {
                    throw new StartupConfigurationException(key, "(PEM)", "an RSA or EC public key in PEM");
                }
                return new ECDsaSecurityKey(ec);
            }
        }
        var bytes = new byte[text.Length];
        if (!Convert.TryFromBase64String(text, bytes, out var length) || length < 32)
        {
            throw new StartupConfigurationException(key, "(hidden)", "a PEM public key or a base64 HMAC key of at least 32 bytes");
        }
        return new SymmetricSecurityKey(bytes[..length]);
    }

    private static bool ReadBool(IConfigurationSection section, string name)
    {
        var value = section[name];
        if (string.IsNullOrWhiteSpace(value))
        {
            return false;
        }
        return bool.TryParse(value, out var parsed) ? parsed : throw new StartupConfigurationException($"{section.Path}:{name}", value, "true or false");
    }

    private static int ReadInt(IConfigurationSection section, string name, int min, int max)
    {
        var value = section[name];
        if (string.IsNullOrWhiteSpace(value))
        {
            return 0;
        }
        return int.TryParse(value, out var parsed) && parsed >= min && parsed <= max
            ? parsed
            : throw new StartupConfigurationException($"{section.Path}:{name}", value, $"an integer from {min} to {max}");
    }
}
