using CoLM.Cli;

return await ColmCommand.RunAsync(args, CancellationToken.None);
