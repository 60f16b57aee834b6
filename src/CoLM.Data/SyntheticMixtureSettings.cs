namespace CoLM.Data;

/// <param name="Mixture">
/// "skills" (the default mixture) or "planted", the same mixture with its largest source replaced by
/// a control that has something for a coreset to find (<see cref="SyntheticSkills.Planted"/>).
/// </param>
public sealed record SyntheticMixtureSettings(int TrainExamples = 4000, int HeldoutPerSource = 16, long Seed = 1234, string Mixture = "skills")
{
    public const string Skills = "skills", PlantedControl = "planted";
}
