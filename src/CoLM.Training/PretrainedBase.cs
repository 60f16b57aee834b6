namespace CoLM.Training;

/// <summary>
/// The pretrained base that ships with colm: the built-in decoder after `colm pretrain` with the
/// default settings, a Llama folder copied next to the program (models/colm-base). The default run
/// and `bench quality` fine-tune it with LoRA, as the paper fine-tunes a pretrained model; a random
/// frozen base learns mostly the output format in a short run, which no data selection can speed up.
/// </summary>
public static class PretrainedBase
{
    /// <summary>colm.model.base values: the shipped folder, or the built-in decoder from colm.model.init-seed.</summary>
    public const string Pretrained = "pretrained", Random = "random";

    /// <summary>
    /// Written by `colm pretrain` beside the weights: how the folder was made. Its presence also
    /// says the folder uses the built-in character tokenizer (it has no tokenizer files).
    /// </summary>
    public const string ProvenanceFile = "colm-pretrain.json";

    public static string ShippedFolder => Path.Combine(AppContext.BaseDirectory, "models", "colm-base");

    /// <summary>True for a folder `colm pretrain` wrote: it is read with the character tokenizer.</summary>
    public static bool UsesCharTokenizer(string folder) => File.Exists(Path.Combine(folder, ProvenanceFile));
}
