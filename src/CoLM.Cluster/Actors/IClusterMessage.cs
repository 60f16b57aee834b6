namespace CoLM.Cluster.Actors;

/// <summary>
/// Marks a message that may travel between nodes. hocon/akka.conf binds this interface to
/// <see cref="Serialization.ColmMessageSerializer"/>, which writes each registered type in a fixed
/// binary layout; anything else sent to a remote actor is refused rather than serialized by reflection.
/// </summary>
public interface IClusterMessage;
