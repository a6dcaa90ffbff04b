using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace CloudMemory.BuildingBlocks.Hosting;

/// <summary>RFC 7807 problem details with stable <c>type</c> URIs and a <c>code</c> extension.</summary>
public static class Problems
{
    /// <summary>Base of every problem type URI.</summary>
    public const string TypeBase = "https://cloudmemory.dev/problems/";

    /// <summary>A problem with a stable code.</summary>
    public static ProblemHttpResult Create(int status, string code, string title, string? detail = null, IDictionary<string, object?>? extensions = null)
    {
        var problem = new ProblemDetails { Status = status, Type = TypeBase + code, Title = title, Detail = detail };
        problem.Extensions["code"] = code;
        if (extensions is not null)
        {
            foreach (var (key, value) in extensions)
            {
                problem.Extensions[key] = value;
            }
        }
        return TypedResults.Problem(problem);
    }

    /// <summary>400 with a code.</summary>
    public static ProblemHttpResult BadRequest(string code, string detail) => Create(StatusCodes.Status400BadRequest, code, "The request is invalid.", detail);

    /// <summary>404.</summary>
    public static ProblemHttpResult NotFound(string code, string detail) => Create(StatusCodes.Status404NotFound, code, "Not found.", detail);

    /// <summary>409.</summary>
    public static ProblemHttpResult Conflict(string code, string detail) => Create(StatusCodes.Status409Conflict, code, "Conflict.", detail);

    /// <summary>403.</summary>
    public static ProblemHttpResult Forbidden(string code, string detail) => Create(StatusCodes.Status403Forbidden, code, "Forbidden.", detail);

    /// <summary>413.</summary>
    public static ProblemHttpResult TooLarge(string code, string detail) => Create(StatusCodes.Status413PayloadTooLarge, code, "The request is too large.", detail);
}

/// <summary>A domain error that maps to a problem response.</summary>
public sealed class ProblemException(int status, string code, string detail) : Exception(detail)
{
    /// <summary>HTTP status.</summary>
    public int Status { get; } = status;

    /// <summary>Stable code.</summary>
    public string Code { get; } = code;

    /// <summary>The problem result.</summary>
    public ProblemHttpResult ToResult() => Problems.Create(Status, Code, Status switch
    {
        400 => "The request is invalid.",
        401 => "Authentication is required.",
        403 => "Forbidden.",
        404 => "Not found.",
        409 => "Conflict.",
        413 => "The request is too large.",
        428 => "A precondition is required.",
        429 => "Too many requests.",
        507 => "The store is full.",
        _ => "The request failed.",
    }, Message);
}
