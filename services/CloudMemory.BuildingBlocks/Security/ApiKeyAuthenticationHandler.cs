using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CloudMemory.BuildingBlocks.Security;

/// <summary>Authenticates <c>X-Api-Key: cmk_...</c> or <c>Authorization: Bearer cmk_...</c>.</summary>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, ApiKeys keys)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";

    public const string HeaderName = "X-Api-Key";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var presented = Request.Headers[HeaderName].ToString();
        if (presented.Length == 0)
        {
            var authorization = Request.Headers.Authorization.ToString();
            if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            {
                presented = authorization["Bearer ".Length..].Trim();
            }
        }
        if (presented.Length == 0)
        {
            return AuthenticateResult.NoResult();
        }
        var identity = await keys.VerifyAsync(presented, Context.RequestAborted);
        return identity is null
            ? AuthenticateResult.Fail("unknown or revoked API key")
            : AuthenticateResult.Success(new AuthenticationTicket(identity.ToPrincipal(SchemeName), SchemeName));
    }
}
