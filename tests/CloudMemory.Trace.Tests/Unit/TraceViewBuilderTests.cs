using CloudMemory.Contracts.Traces;
using CloudMemory.Trace.Features.Read;
using static CloudMemory.Trace.Tests.Infrastructure.Steps;

namespace CloudMemory.Trace.Tests.Unit;

/// <summary>The tree of steps whose parent links are not a tree: cycles, unknown parents, a step its own parent.</summary>
public sealed class TraceViewBuilderTests
{
    private static TraceStep At(int index, string? parent, double startMs, double durationMs, bool success = true, long tokens = 0) => new()
    {
        TraceId = "t",
        StepId = $"s{index}",
        StepIndex = index,
        AgentId = "a",
        StepType = StepTypes.Tool,
        Name = "n",
        ParentStepId = parent,
        StartedAt = T0.AddMilliseconds(startMs),
        DurationMs = durationMs,
        Success = success,
        Usage = tokens > 0 ? new TokenUsage(tokens, 0) : null,
        InputHash = "h",
        OutputHash = "h",
        Audit = new StepAudit([], [], [], [], [], "compliant", []),
        RecordedAt = T0,
    };

    [Fact]
    public void Build_ParentCycleAndUnknownParent_EveryStepReachedOnceFromARoot()
    {
        // s0 is a root with child s3; s1 and s2 name each other; s4 names a step not in the trace; s5 names itself.
        TraceStep[] steps =
        [
            At(0, null, 0, 100, tokens: 5),
            At(1, "s2", 10, 20),
            At(2, "s1", 15, 30, success: false, tokens: 7),
            At(3, "s0", 20, 50, tokens: 11),
            At(4, "missing", 200, 10),
            At(5, "s5", 300, 10),
        ];

        var view = TraceViewBuilder.Build("t", steps);

        var nodes = view.Tree.Nodes.ToDictionary(n => n.StepId);
        view.Tree.Roots.Should().Equal("s0", "s1", "s4", "s5");
        nodes["s1"].ParentStepId.Should().BeNull("the cycle is broken at its first step");
        nodes["s1"].Children.Should().Equal("s2");
        nodes["s2"].ParentStepId.Should().Be("s1");
        nodes["s2"].Depth.Should().Be(1);
        nodes["s2"].Children.Should().BeEmpty();
        nodes["s1"].Subtree.Should().Be(new SubtreeRollup(2, 35, 7, 0, 0, 1));
        nodes["s0"].Subtree.Should().Be(new SubtreeRollup(2, 100, 16, 0, 0, 0));
        nodes["s4"].ParentStepId.Should().BeNull();
        nodes["s5"].ParentStepId.Should().BeNull();
        view.Tree.Nodes.Sum(n => n.Subtree.Steps * (n.ParentStepId is null ? 1 : 0)).Should().Be(6, "the roots' subtrees cover every step once");
        view.Rollup.ErrorCount.Should().Be(1);
        view.Rollup.InputTokens.Should().Be(23);
        view.Rollup.WallMs.Should().Be(310);
        view.Rollup.CriticalPath.Should().Equal("s0", "s3", "s4", "s5");
        view.Rollup.CriticalPathMs.Should().Be(120, "s3 runs inside s0, so only the top-level steps on the path count");
    }

    [Fact]
    public void Build_NoSteps_EmptyView()
    {
        var view = TraceViewBuilder.Build("t", []);

        view.Tree.Roots.Should().BeEmpty();
        view.Rollup.StepCount.Should().Be(0);
        view.Rollup.CriticalPath.Should().BeEmpty();
    }
}
