Console.WriteLine("colm: not built yet");
