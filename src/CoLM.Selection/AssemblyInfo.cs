using System.Runtime.CompilerServices;

// Tests check internal pieces (top-h selection, distance kernel) against slow references.
[assembly: InternalsVisibleTo("CoLM.Selection.Tests")]
