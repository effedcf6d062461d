// A game client in C# over bindings/Tickcast.cs: listens on an address,
// drains its events each frame until the server says goodbye (or a time
// limit), then prints the digest of the world it holds, the same FNV-1a
// over every id and coordinate bit that examples/game_server.rs prints.
//
//   mcs -out:Receiver.exe bindings/Tickcast.cs bindings/examples/Receiver.cs
//   LD_LIBRARY_PATH=target/release mono Receiver.exe 127.0.0.1:47476 30
//   (with target/release/libtickcast.so, loaded as "tickcast")
using System;
using System.Threading;
using Tickcast;

public static class ReceiverExample
{
    static ulong Fnv(ulong h, uint w)
    {
        for (int i = 0; i < 4; i++)
        {
            h = (h ^ ((w >> (8 * i)) & 0xff)) * 0x100000001b3UL;
        }
        return h;
    }

    static uint Bits(float f)
    {
        return BitConverter.ToUInt32(BitConverter.GetBytes(f), 0);
    }

    public static int Main(string[] args)
    {
        string bind = args.Length > 0 ? args[0] : "127.0.0.1:47476";
        int seconds = args.Length > 1 ? int.Parse(args[1]) : 30;
        Native.CheckAbi();
        using (var r = Receiver.Start(Native.DefaultReceiverConfig(), bind))
        {
            var events = new Event[4096];
            bool ended = false;
            ulong despawned = 0;
            for (int i = 0; i < seconds * 60 && !ended; i++)
            {
                int k = r.Events(events);
                for (int j = 0; j < k; j++)
                {
                    if (events[j].Kind == EventKind.Despawned) despawned++;
                    if (events[j].Kind == EventKind.StreamEnded) ended = true;
                }
                if (k < events.Length) Thread.Sleep(16);
            }
            var world = new EntityState[0];
            FrameInfo info;
            int n = r.World(ref world, out info);
            ulong h = 0xcbf29ce484222325UL;
            for (int i = 0; i < n; i++)
            {
                h = Fnv(h, world[i].Id);
                h = Fnv(h, Bits(world[i].X));
                h = Fnv(h, Bits(world[i].Y));
                h = Fnv(h, Bits(world[i].Z));
            }
            Console.WriteLine("c# receiver: despawned " + despawned);
            Console.WriteLine("final entities " + n + " digest " + h.ToString("x16"));
            return ended ? 0 : 1;
        }
    }
}
