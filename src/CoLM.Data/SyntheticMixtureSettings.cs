namespace CoLM.Data;

/// <param name="Mixture">
/// "skills" (ten skills, one format each), "instruct" (the same skills built like instruction data:
/// sub-types, near-duplicates and a held-out-only composite task, <see cref="InstructSkills"/>) or
/// "planted", a four-source control whose one large source has something for a coreset to find
/// (<see cref="SyntheticSkills.PlantedControl"/>).
/// </param>
public sealed record SyntheticMixtureSettings(int TrainExamples = 4000, int HeldoutPerSource = 16, long Seed = 1234, string Mixture = "skills")
{
    public const string Skills = "skills", Instruct = "instruct", PlantedControl = "planted";
}
