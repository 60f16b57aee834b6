namespace CoLM.Data;

public sealed record SyntheticMixtureSettings(int TrainExamples = 4000, int HeldoutPerSource = 16, long Seed = 1234);
