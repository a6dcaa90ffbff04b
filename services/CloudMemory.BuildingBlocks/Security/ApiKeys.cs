using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using CloudMemory.BuildingBlocks.Hosting;

namespace CloudMemory.BuildingBlocks.Security;

/// <summary>
/// Issues and verifies API keys. A key reads <c>cmk_{id}_{secret}</c>: the id (16 hex digits) finds
/// the stored record, and the SHA-256 of the 256-bit random secret is compared in constant time.
/// Bootstrap admin keys come from configuration and are compared the same way.
/// </summary>
public sealed class ApiKeys(IApiKeyStore store, AuthOptions options, TimeProvider time)
{
    /// <summary>Prefix of every issued key (lets secret scanners recognise leaked keys).</summary>
    public const string Prefix = "cmk_";

    private const int IdHexLength = 16;

    private readonly byte[][] _adminHashes = options.AdminKeys.Select(AdminHash).ToArray();

    /// <summary>Issues a key of <paramref name="tenant"/>; the returned key is the only copy of its secret.</summary>
    public async Task<(string Key, ApiKeyRecord Record)> IssueAsync(string tenant, string? agent, bool admin, string? name, CancellationToken cancellationToken)
    {
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(IdHexLength / 2));
        var secret = Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));
        var record = new ApiKeyRecord(id, tenant, agent, admin, name, Hash(secret), time.GetUtcNow(), null);
        await store.AddAsync(record, cancellationToken);
        return ($"{Prefix}{id}_{secret}", record);
    }

    /// <summary>The identity a presented key stands for, or null when it is unknown, revoked or malformed.</summary>
    public async Task<CallerIdentity?> VerifyAsync(string presented, CancellationToken cancellationToken)
    {
        if (TryParse(presented, out var id, out var secret)
            && await store.FindAsync(id, cancellationToken) is { RevokedAt: null } record
            && CryptographicOperations.FixedTimeEquals(Hash(secret), record.SecretSha256))
        {
            return new CallerIdentity(record.Tenant, record.Agent, record.IsAdmin, record.Id);
        }
        var hash = Hash(presented);
        CallerIdentity? admin = null;
        // Every configured key is compared, so the time taken does not say which one matched.
        for (var i = 0; i < _adminHashes.Length; i++)
        {
            if (CryptographicOperations.FixedTimeEquals(hash, _adminHashes[i]) && admin is null)
            {
                admin = new CallerIdentity(options.AdminKeys[i].Tenant, null, IsAdmin: true, KeyId: $"config:{i}");
            }
        }
        return admin;
    }

    private static bool TryParse(string presented, out string id, out string secret)
    {
        id = secret = "";
        if (!presented.StartsWith(Prefix, StringComparison.Ordinal) || presented.Length < Prefix.Length + IdHexLength + 2
            || presented[Prefix.Length + IdHexLength] != '_')
        {
            return false;
        }
        id = presented.Substring(Prefix.Length, IdHexLength);
        secret = presented[(Prefix.Length + IdHexLength + 1)..];
        return id.All(char.IsAsciiHexDigitLower);
    }

    private static byte[] Hash(string value) => SHA256.HashData(Encoding.UTF8.GetBytes(value));

    private static byte[] AdminHash(AdminKeyOptions admin, int index)
    {
        var key = $"{AuthOptions.SectionName}:AdminKeys:{index}";
        if (!Ids.IsValid(admin.Tenant))
        {
            throw new StartupConfigurationException($"{key}:Tenant", admin.Tenant, "a tenant id (1-128 letters, digits or - _ . : @)");
        }
        if (!string.IsNullOrEmpty(admin.KeySha256))
        {
            return admin.KeySha256.Length == 64 && admin.KeySha256.All(char.IsAsciiHexDigit)
                ? Convert.FromHexString(admin.KeySha256)
                : throw new StartupConfigurationException($"{key}:KeySha256", "(hidden)", "64 hex digits (the SHA-256 of the key)");
        }
        return admin.Key is { Length: >= 32 }
            ? Hash(admin.Key)
            : throw new StartupConfigurationException($"{key}:Key", "(hidden)", "a secret of at least 32 characters (or set KeySha256)");
    }
}
