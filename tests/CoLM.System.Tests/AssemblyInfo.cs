// Whole-system tests each start an actor system and libtorch threads; running them one at a
// time keeps them fast and their timings meaningful on a 2-core machine.
[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]
