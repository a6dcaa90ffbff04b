namespace CloudMemory.Conversations.Sessions;

/// <summary>State-store keys of sessions.</summary>
public static class SessionKeys
{
    /// <summary>
    /// <c>short_term_memory:session:{conversationId}</c> for the default tenant (the seed's key);
    /// other tenants get their own prefix so their keys can never collide.
    /// </summary>
    public static string For(string tenantId, string conversationId) =>
        tenantId == BuildingBlocks.Hosting.Tenant.Default
            ? $"short_term_memory:session:{conversationId}"
            : $"short_term_memory:{tenantId}:session:{conversationId}";

    /// <summary>The HTTP ETag of a session version.</summary>
    public static string ETag(long version) => $"\"{version}\"";
}
