global using Xunit;

// Tests share the 2 cores through libtorch threads; running classes side by side only adds contention.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
