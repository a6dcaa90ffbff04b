using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace CloudMemory.BuildingBlocks.Hosting;

/// <summary>
/// Completes the OpenAPI document of every service: each operation has an operationId, documents
/// the identity and precondition headers it reads, and every error status it can answer with the
/// shared problem-details schema.
/// </summary>
internal sealed class OpenApiConventions : IOpenApiDocumentTransformer
{
    private const string ProblemSchema = "ProblemDetails";

    public Task TransformAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        document.Components ??= new OpenApiComponents();
        document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>();
        document.Components.Schemas[ProblemSchema] = Problem();
        foreach (var (path, item) in document.Paths)
        {
            if (item.Operations is null || !path.StartsWith("/v1", StringComparison.Ordinal))
            {
                continue;
            }
            foreach (var (method, operation) in item.Operations)
            {
                operation.OperationId ??= OperationId(method, path);
                operation.Parameters ??= [];
                AddHeader(operation, Tenant.HeaderName, "Tenant. Without authentication it selects the tenant (default 'default'); with it, it must equal the credential's tenant or the request is refused (403).");
                AddHeader(operation, Tenant.AgentHeaderName, "Agent. Without authentication it names the calling agent; with it, it must equal the credential's agent (403 otherwise).");
                AddHeader(operation, "Authorization", "'Bearer <jwt>' (mode jwt) or 'Bearer cmk_...' (mode apikey); X-Api-Key also carries an API key.");
                AddHeader(operation, "X-Api-Key", "An API key 'cmk_...' (mode apikey).");
                if (method == HttpMethod.Put && path.StartsWith("/v1/sessions/", StringComparison.Ordinal) && !path.Contains("agent-slots", StringComparison.Ordinal))
                {
                    AddHeader(operation, "If-Match", "The ETag last read, or * to overwrite unconditionally.", required: true);
                }
                operation.Responses ??= new OpenApiResponses();
                foreach (var (status, description) in Errors(method, path, operation))
                {
                    if (!operation.Responses.ContainsKey(status))
                    {
                        operation.Responses[status] = new OpenApiResponse
                        {
                            Description = description,
                            Content = new Dictionary<string, OpenApiMediaType>
                            {
                                ["application/problem+json"] = new() { Schema = new OpenApiSchemaReference(ProblemSchema, document) },
                            },
                        };
                    }
                }
            }
        }
        return Task.CompletedTask;
    }

    private static IEnumerable<(string Status, string Description)> Errors(HttpMethod method, string path, OpenApiOperation operation)
    {
        yield return ("400", "Invalid input (code names the rule, e.g. invalid-conversationId, null-field, nul-character, invalid-utf8, malformed-json).");
        yield return ("401", "Authentication is on and the request has no valid credential (unauthenticated, credential-without-tenant).");
        yield return ("403", "The credential's tenant or agent differs from X-Tenant-Id/X-Agent-Id, or the agent may not do this.");
        if (path.Contains('{', StringComparison.Ordinal))
        {
            yield return ("404", "Not found in this tenant.");
        }
        if (method == HttpMethod.Put || method == HttpMethod.Post)
        {
            yield return ("409", "Conflict (e.g. etag-mismatch, a finalized conversation).");
            yield return ("413", "The request or a value in it is too large.");
        }
        if (operation.Parameters?.Any(p => p.Name == "If-Match" && p.Required) == true)
        {
            yield return ("428", "If-Match is required.");
        }
        yield return ("429", "The tenant's rate limit is exceeded (rate-limited); see Retry-After.");
        yield return ("500", "An unexpected failure.");
        yield return ("503", "A dependency is unavailable.");
    }

    private static void AddHeader(OpenApiOperation operation, string name, string description, bool required = false)
    {
        if (operation.Parameters!.Any(p => p.In == ParameterLocation.Header && string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase)))
        {
            return;
        }
        operation.Parameters!.Add(new OpenApiParameter
        {
            Name = name,
            In = ParameterLocation.Header,
            Required = required,
            Description = description,
            Schema = new OpenApiSchema { Type = JsonSchemaType.String },
        });
    }

    // e.g. GET /v1/conversations/{conversationId}/messages -> GetConversationsMessages
    private static string OperationId(HttpMethod method, string path)
    {
        var words = path.Split('/', StringSplitOptions.RemoveEmptyEntries)
            .Where(s => s != "v1" && !s.StartsWith('{'))
            .SelectMany(s => s.Split('-', '_', '.'))
            .Where(s => s.Length > 0)
            .Select(s => char.ToUpperInvariant(s[0]) + s[1..]);
        var verb = method.Method.ToLowerInvariant();
        return char.ToUpperInvariant(verb[0]) + verb[1..] + string.Concat(words) + (path.EndsWith('}') ? "ById" : "");
    }

    private static OpenApiSchema Problem() => new()
    {
        Type = JsonSchemaType.Object,
        Description = "RFC 7807 problem details; 'code' is stable and names the rule that refused the request.",
        Required = new HashSet<string> { "status", "code" },
        Properties = new Dictionary<string, IOpenApiSchema>
        {
            ["type"] = new OpenApiSchema { Type = JsonSchemaType.String },
            ["title"] = new OpenApiSchema { Type = JsonSchemaType.String },
            ["status"] = new OpenApiSchema { Type = JsonSchemaType.Integer },
            ["detail"] = new OpenApiSchema { Type = JsonSchemaType.String },
            ["code"] = new OpenApiSchema { Type = JsonSchemaType.String },
            ["traceId"] = new OpenApiSchema { Type = JsonSchemaType.String },
        },
    };
}
