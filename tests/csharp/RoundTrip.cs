// The C ABI from C#, through Tickcast.cs alone, on loopback: what
// tests/c/roundtrip.c does. A receiver on 127.0.0.1:0 and a
// broadcaster to it on tickcast's clock: about 1,000 entities a frame for
// 60 frames, ids that are multiples of 10 despawned from frame 30, ids
// 5000.. spawned one a frame. The receiver's world must end equal to the
// last frame, nothing lost, the despawns arriving as events, the samples
// covering the world. Then the game's clock: each Send arrives under its
// tick, and a tick not after the last is refused.
//
// Exits 0 only if every check passed; prints each failed check otherwise.
// Run by tests/ffi_csharp.rs (mcs, then mono).

using System;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Threading;
using Tickcast;

static class RoundTrip
{
    const int Base = 1000;
    const int DespawnFrom = 30;
    const uint SpawnFirst = 5000;
    const int SpawnMax = 40;
    const int Despawned = Base / 10;

    static int failures;

    static void Check(bool ok, string what)
    {
        if (!ok)
        {
            failures++;
            Console.Error.WriteLine("FAILED: " + what);
        }
    }

    /// A receiver of config `c` is refused as TC_ERR_CONFIG naming `field`.
    static void RefusedNaming(ReceiverConfig c, string field)
    {
        try
        {
            Receiver.Start(c, "127.0.0.1:0").Stop();
            Check(false, field + " accepted");
        }
        catch (TickcastException e)
        {
            Check(e.Status == Status.Config && e.Message.Contains(field), field + ": " + e.Message);
        }
    }

    static void Expect(Status want, Action call, string what)
    {
        try
        {
            call();
            Check(want == Status.Ok, what + ": succeeded, not " + want);
        }
        catch (TickcastException e)
        {
            Check(e.Status == want, what + ": " + e.Message + ", not " + want);
        }
    }

    // The game's world at frame `step`, ascending by id; returns its size.
    static int World(int step, Entity[] into)
    {
        int n = 0;
        for (uint id = 0; id < Base; id++)
        {
            if (step >= DespawnFrom && id % 10 == 0)
            {
                continue;
            }
            into[n++] = new Entity(id, id, step, 0.5f);
        }
        for (int i = 0; i < Math.Min(step, SpawnMax); i++)
        {
            into[n++] = new Entity(SpawnFirst + (uint)i, -1.0f, step, 0.0f);
        }
        return n;
    }

    static EntityState[] got = new EntityState[16];

    static bool WorldIs(Receiver r, Entity[] want, int n)
    {
        FrameInfo info;
        int m = r.World(ref got, out info);
        if (m != n || info.Complete == 0)
        {
            return false;
        }
        for (int i = 0; i < n; i++)
        {
            if (got[i].Id != want[i].Id || got[i].X != want[i].X || got[i].Y != want[i].Y || got[i].Z != want[i].Z)
            {
                return false;
            }
        }
        return true;
    }

    static bool WaitUntil(Func<bool> done, double seconds)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            if (done())
            {
                return true;
            }
            Thread.Sleep(2);
        }
        return done();
    }

    static void Sizes()
    {
        // The C structs' sizes on x86_64 (src/ffi/types.rs tests the same).
        Check(Marshal.SizeOf(typeof(Entity)) == 16, "Entity is not 16 bytes");
        Check(Marshal.SizeOf(typeof(EntityState)) == 40, "EntityState is not 40 bytes");
        Check(Marshal.SizeOf(typeof(FrameInfo)) == 32, "FrameInfo is not 32 bytes");
        Check(Marshal.SizeOf(typeof(Event)) == 24, "Event is not 24 bytes");
        Check(Marshal.SizeOf(typeof(Sample)) == 20, "Sample is not 20 bytes");
        Check(Marshal.SizeOf(typeof(BroadcastConfig)) == 120, "BroadcastConfig is not 120 bytes");
        Check(Marshal.SizeOf(typeof(ReceiverConfig)) == 112, "ReceiverConfig is not 112 bytes");
        Check(Marshal.SizeOf(typeof(BroadcastFigures)) == 192, "BroadcastFigures is not 192 bytes");
        Check(Marshal.SizeOf(typeof(ReceiveFigures)) == 272, "ReceiveFigures is not 272 bytes");
    }

    static void Arguments()
    {
        var bc = Native.DefaultBroadcastConfig();
        Check(bc.RateHz == 60.0 && bc.MaxSubscribers == 64, "the defaults are not 60 Hz and 64");
        Check(bc.Size == (ulong)Marshal.SizeOf(typeof(BroadcastConfig)) && bc.RealtimePriority == 0 && bc.Cpu == -1,
            "the default broadcast thread is not ordinary and unpinned, or the size is not the struct's");
        bc.RateHz = 0.0;
        try
        {
            Broadcaster.Start(bc, Clock.Tickcast, "127.0.0.1:9").Stop();
            Check(false, "a rate of 0 started");
        }
        catch (TickcastException e)
        {
            Check(e.Status == Status.Config && e.Message.Contains("tick rate 0 Hz"), "a rate of 0: " + e.Message);
        }
        var rc = Native.DefaultReceiverConfig();
        Check(rc.Size == (ulong)Marshal.SizeOf(typeof(ReceiverConfig)), "the default config's Size is not its size");
        Check(rc.RealtimePriority == 0 && rc.Cpu == -1, "the default thread is not ordinary and unpinned");
        rc.Size = 0;
        // A config not made by its Default (Size 0, as `new` makes it) is
        // refused by the binding, saying where a config comes from (the
        // library refuses it too: tests/ffi_abi.rs).
        foreach (var bad in new[] { rc, new ReceiverConfig() })
        {
            try
            {
                Receiver.Start(bad, "127.0.0.1:0").Stop();
                Check(false, "a config of Size 0 started");
            }
            catch (ArgumentException e)
            {
                Check(e.Message.Contains("Native.DefaultReceiverConfig()"), "Size 0: " + e.Message);
            }
        }
        // Values that cannot work are refused, naming the field.
        var noRoom = Native.DefaultReceiverConfig();
        noRoom.EventCapacity = 0;
        var nan = Native.DefaultReceiverConfig();
        nan.TeleportDistance = float.NaN;
        RefusedNaming(noRoom, "event capacity");
        RefusedNaming(nan, "teleport distance");
        try
        {
            Receiver.Start(Native.DefaultReceiverConfig(), "not an address").Stop();
            Check(false, "a bad bind address started");
        }
        catch (TickcastException e)
        {
            Check(e.Status == Status.Config && e.Message.Contains("bind: "), "a bad bind: " + e.Message);
        }
    }

    static Entity[] frame = new Entity[Base + SpawnMax];

    static void TickcastClock()
    {
        const string half = "tickcast clock";
        using (var r = Receiver.Start(Native.DefaultReceiverConfig(), "127.0.0.1:0"))
        {
            var bc = Native.DefaultBroadcastConfig();
            bc.MaxSubscribers = 0;
            bc.RateHz = 200.0;
            var b = Broadcaster.Start(bc, Clock.Tickcast, "127.0.0.1:" + r.LocalPort);
            Expect(Status.WrongClock, () => b.Send(1, frame, 0), half + ": Send");
            int n = 0;
            for (int step = 0; step < 60; step++)
            {
                n = World(step, frame);
                b.Publish(frame, n);
                Thread.Sleep(5);
            }
            var bad = new Entity[] { new Entity(1, float.NaN, 0, 0) };
            Expect(Status.BadCoordinate, () => b.Publish(bad, 1), half + ": a NaN");
            var twice = new Entity[] { new Entity(4, 0, 0, 0), new Entity(4, 1, 1, 1) };
            Expect(Status.BadFrame, () => b.Publish(twice, 2), half + ": an id twice");
            Check(WaitUntil(() => WorldIs(r, frame, n), 5.0), half + ": the receiver's world never became the last frame");

            var bf = b.Stop();
            Check(bf.FramesCommitted == 60, half + ": " + bf.FramesCommitted + " frames committed, not 60");
            Check(bf.FramesSent > 0, half + ": no frame sent");
            Check(bf.Despawned == Despawned, half + ": " + bf.Despawned + " despawned");
            Check(bf.LiveEntities == (ulong)n, half + ": " + bf.LiveEntities + " live entities");
            Console.WriteLine(half + ": " + bf.FramesCommitted + " frames committed, " + bf.FramesSent
                + " ticks sent as " + bf.PacketsSent + " packets");
            Check(WaitUntil(() => r.Figures().Goodbye == 1, 5.0), half + ": no goodbye arrived");

            var events = new Event[256];
            var despawned = new int[Base];
            int spawned = 0, ended = 0, wrong = 0, total = 0, k;
            do
            {
                k = r.Events(events);
                for (int i = 0; i < k; i++)
                {
                    var e = events[i];
                    if (e.Kind == EventKind.Despawned)
                    {
                        if (e.Id < Base && e.Id % 10 == 0) despawned[e.Id]++; else wrong++;
                    }
                    else if (e.Kind == EventKind.Spawned) spawned++;
                    else if (e.Kind == EventKind.StreamEnded) ended++;
                }
                total += k;
            } while (k == events.Length);
            for (int id = 0; id < Base; id += 10)
            {
                Check(despawned[id] == 1, half + ": " + despawned[id] + " despawn events for id " + id);
            }
            Check(wrong == 0, half + ": despawn events for ids never despawned");
            Check(spawned == Base + SpawnMax, half + ": " + spawned + " spawn events");
            Check(ended == 1, half + ": " + ended + " stream-ended events");
            Console.WriteLine(half + ": " + total + " events (" + spawned + " spawned, " + Despawned
                + " despawned, " + ended + " stream end)");

            var samples = new Sample[0];
            int m = r.Sample(ref samples);
            Check(m == n, half + ": " + m + " samples for " + n + " entities");
            int off = 0;
            for (int i = 0; i < Math.Min(m, n); i++)
            {
                var s = samples[i];
                if (s.Id != frame[i].Id || s.X != frame[i].X || s.Z != frame[i].Z || s.Y < 0 || s.Y > frame[i].Y)
                {
                    off++;
                }
            }
            Check(off == 0, half + ": " + off + " samples off their entity");
            Console.WriteLine(half + ": " + m + " entities sampled");

            var rf = r.Stop();
            Check(rf.Lost == 0, half + ": " + rf.Lost + " lost");
            Check(rf.Expected > 0 && rf.Received + rf.Lost == rf.Expected, half + ": received + lost != expected");
            Check(rf.EntitiesDespawned == Despawned, half + ": " + rf.EntitiesDespawned + " entities despawned");
            Console.WriteLine(half + ": received " + rf.Received + " of " + rf.Expected + " packets, "
                + rf.Lost + " lost, " + rf.EntitiesDespawned + " entities despawned");
        }
    }

    static void GameClock()
    {
        const string half = "game clock";
        using (var r = Receiver.Start(Native.DefaultReceiverConfig(), "127.0.0.1:0"))
        using (var b = Broadcaster.Start(Native.DefaultBroadcastConfig(), Clock.Game, "127.0.0.1:" + r.LocalPort))
        {
            Expect(Status.WrongClock, () => b.Publish(frame, 0), half + ": Publish");
            int n = 0, late = 0;
            for (int step = 0; step < 10; step++)
            {
                n = World(step, frame);
                ulong tick = 100 + (ulong)step;
                b.Send(tick, frame, n);
                FrameInfo info = new FrameInfo();
                if (!WaitUntil(() => { r.World(ref got, out info); return info.HasFrame == 1 && info.Tick == tick; }, 2.0))
                {
                    late++;
                }
            }
            Check(late == 0, half + ": " + late + " of 10 ticks never arrived within 2 s");
            Expect(Status.TickNotAfter, () => b.Send(105, frame, n), half + ": tick 105 after 109");
            Check(WaitUntil(() => WorldIs(r, frame, n), 5.0), half + ": the receiver's world is not the last frame");
            var bf = b.Stop();
            Check(bf.FramesSent == 10, half + ": " + bf.FramesSent + " frames sent, not 10");
            Console.WriteLine(half + ": " + bf.FramesSent + " frames sent as " + bf.PacketsSent + " packets");
            Check(WaitUntil(() => r.Figures().Goodbye == 1, 5.0), half + ": no goodbye arrived");
            var rf = r.Stop();
            Check(rf.Lost == 0, half + ": " + rf.Lost + " lost");
            Check(rf.HasCount == 1 && rf.Count == 109, half + ": count " + rf.Count + ", not 109");
            Console.WriteLine(half + ": received " + rf.Received + " of " + rf.Expected + " packets, "
                + rf.Lost + " lost, count " + rf.Count);
        }
    }

    static int Main()
    {
        Console.WriteLine("tickcast " + Native.Version() + " from C#");
        try
        {
            Native.CheckAbi();
            Sizes();
            Arguments();
            TickcastClock();
            GameClock();
        }
        catch (Exception e)
        {
            failures++;
            Console.Error.WriteLine("FAILED: " + e);
        }
        if (failures > 0)
        {
            Console.WriteLine("roundtrip: " + failures + " checks failed");
            return 1;
        }
        Console.WriteLine("roundtrip: every check passed");
        return 0;
    }
}
