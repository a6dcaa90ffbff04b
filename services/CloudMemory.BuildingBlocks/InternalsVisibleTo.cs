using System.Runtime.CompilerServices;

// The Dapr actor host attaches state and reminders to actor instances exactly as the embedded
// runtime does, through Actor.Attach, which stays internal so services cannot call it.
[assembly: InternalsVisibleTo("CloudMemory.Dapr")]
