// Tickcast.cs: C# over tickcast's C ABI (include/tickcast.h), in one
// file. Drop it into a Unity project's Assets/Scripts/ beside the native
// library in Assets/Plugins/<platform>/ (bindings/README.md says how).
//
// Two layers:
// - Native: the C functions as they are, one [DllImport] each, static,
//   cdecl, over blittable [StructLayout(Sequential)] structs and IntPtr
//   handles. Nothing is marshalled by copy, no delegate is passed to native
//   code and nothing calls back into managed code, so it runs under
//   Mono and IL2CPP alike.
// - Broadcaster and Receiver: thin IDisposable wrappers that turn a status
//   into a TickcastException, marshal the config's strings to UTF-8 for the
//   length of the start call, and grow the caller's arrays when the native
//   side says they are too small (never per frame once they are large
//   enough, so a game makes no garbage).
//
// Thread-safety is the C functions': see each one's comment in tickcast.h.
// In short: Publish/Send from one thread at a time; World, Events and
// Sample from one thread at a time (the game's); Figures and LocalPort from
// any thread; Stop/Dispose once, when nothing else uses the object.

using System;
using System.Runtime.InteropServices;
using System.Text;

namespace Tickcast
{
    /// <summary>What a call did (tc_status).</summary>
    public enum Status : int
    {
        Ok = 0,
        InvalidArgument = 1,
        Config = 2,
        Io = 3,
        Stopped = 4,
        BufferTooSmall = 5,
        Panic = 6,
        WrongClock = 7,
        BadCoordinate = 8,
        TickNotAfter = 9,
        BadFrame = 10,
    }

    /// <summary>Who decides when a frame goes out (tc_clock).</summary>
    public enum Clock : uint
    {
        /// <summary>tickcast ticks at RateHz and sends the latest frame published.</summary>
        Tickcast = 0,
        /// <summary>Each Send goes out at once under the game's tick number.</summary>
        Game = 1,
    }

    /// <summary>How the receiver thread waits (tc_receive_mode).</summary>
    public enum ReceiveMode : uint
    {
        Wait = 0,
        Predict = 1,
        BusyPoll = 2,
    }

    /// <summary>What an event says happened (tc_event_kind).</summary>
    public enum EventKind : uint
    {
        Spawned = 1,
        Despawned = 2,
        SessionStarted = 3,
        SessionRestarted = 4,
        StreamEnded = 5,
        Subscribed = 6,
        SubscriptionFailed = 7,
    }

    /// <summary>How a sample's position was found (tc_sample_mode).</summary>
    public enum SampleMode : uint
    {
        Interpolated = 0,
        Extrapolated = 1,
        Held = 2,
        Snapped = 3,
    }

    /// <summary>tc_entity: one entity as the game publishes it. 16 bytes.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Entity
    {
        public uint Id;
        public float X;
        public float Y;
        public float Z;

        public Entity(uint id, float x, float y, float z)
        {
            Id = id;
            X = x;
            Y = y;
            Z = z;
        }
    }

    /// <summary>tc_entity_state: one entity as a receiver holds it. 40 bytes.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct EntityState
    {
        public uint Id;
        public float X;
        public float Y;
        public float Z;
        public ulong Tick;
        public ulong ArrivalNs;
        public ulong TickNs;
    }

    /// <summary>tc_frame_info: which tick a copied frame is as of. 32 bytes.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct FrameInfo
    {
        public ulong Session;
        public ulong Tick;
        public ulong TickNs;
        public uint HasFrame;
        public uint Complete;
    }

    /// <summary>tc_event: one event. 24 bytes.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Event
    {
        public EventKind Kind;
        public uint Id;
        public ulong Tick;
        public ulong Session;
    }

    /// <summary>tc_sample: one entity's position at render time. 20 bytes.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Sample
    {
        public uint Id;
        public float X;
        public float Y;
        public float Z;
        public SampleMode Mode;
    }

    /// <summary>
    /// tc_broadcast_config. Get one from Native.DefaultBroadcastConfig();
    /// the wrapper's Broadcaster.Start fills the string and key fields.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct BroadcastConfig
    {
        /// <summary>sizeof this struct, set by the default function: the
        /// library reads this many bytes, no more.</summary>
        public ulong Size;
        public IntPtr Destinations;
        public IntPtr Group;
        public IntPtr Interface;
        public IntPtr Bind;
        public IntPtr Key;
        public IntPtr KeyFile;
        public double RateHz;
        public ulong DurationMs;
        public ulong RosterInterval;
        public uint MaxSubscribers;
        public uint PayloadBudget;
        public uint MulticastTtl;
        public uint MulticastLoop;
        /// Nonzero: compact snapshots, positions to 1/QuantaPerUnit of a unit.
        public uint QuantaPerUnit;
        /// Compact: ticks between an entity's keyframes (0: 60).
        public uint KeyframeInterval;
        /// Compact: the largest absolute coordinate (0: 1e6).
        public double Bound;
        /// <summary>SCHED_FIFO priority of the broadcast thread, 1 to 99,
        /// (the process's memory is not locked: that is the game's call); 0
        /// (the default): an ordinary thread.</summary>
        public uint RealtimePriority;
        /// <summary>The CPU to pin the broadcast thread to; -1 (the default):
        /// anywhere.</summary>
        public int Cpu;
    }

    /// <summary>
    /// tc_receiver_config. Get one from Native.DefaultReceiverConfig();
    /// the wrapper's Receiver.Start fills the string and key fields.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct ReceiverConfig
    {
        /// <summary>sizeof this struct, set by the default function: the
        /// library reads this many bytes, no more.</summary>
        public ulong Size;
        public IntPtr Bind;
        public IntPtr Group;
        public IntPtr Interface;
        public IntPtr Subscribe;
        public IntPtr Key;
        public IntPtr KeyFile;
        public long InterpolationDelayNs;
        public ulong MaxExtrapolationNs;
        /// <summary>Ids taken are 0..Capacity, at least 1.</summary>
        public uint Capacity;
        /// <summary>Events queued for the game, 1 to 1048576 (allocated at start).</summary>
        public uint EventCapacity;
        public uint RecvBuffer;
        public ReceiveMode Mode;
        /// <summary>Snapshots farther apart than this are snapped: positive, or
        /// float.PositiveInfinity to never snap (NaN or 0 is refused).</summary>
        public float TeleportDistance;
        public uint AdaptiveDelay;
        /// <summary>Nonzero (the default): UDP GRO, a coalesced run queued
        /// and copied once (a run dropped at a full socket counts once in
        /// SocketDrops); 0: each datagram and each drop alone.</summary>
        public uint Gro;
        /// <summary>Always 0: keeps the struct whole 8-byte words.</summary>
        public uint Reserved;
        /// <summary>SCHED_FIFO priority of the receiver thread, 1 to 99,
        /// (the process's memory is not locked: that is the game's call); 0
        /// (the default): an ordinary thread.</summary>
        public uint RealtimePriority;
        /// <summary>The CPU to pin the receiver thread to; -1 (the default):
        /// anywhere.</summary>
        public int Cpu;
    }

    /// <summary>tc_broadcast_figures: what a broadcaster has done. 192 bytes.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct BroadcastFigures
    {
        /// <summary>The bytes the library wrote: this struct's size, or
        /// less from a library older than this binding.</summary>
        public ulong Size;

        public ulong Session;
        public ulong TicksSent;
        public ulong TicksSkipped;
        public ulong PacketsSent;
        public ulong DatagramsSent;
        public ulong BytesSent;
        public ulong SendErrors;
        public ulong SendSyscalls;
        public ulong GsoDatagrams;
        public ulong Subscribers;
        public ulong FramesCommitted;
        public ulong FramesReplaced;
        public ulong FramesSent;
        public ulong FramesRefused;
        public ulong Spawned;
        public ulong Despawned;
        public ulong Rosters;
        public ulong LiveEntities;
        public ulong LatenessSamples;
        public ulong LatenessP50Ns;
        public ulong LatenessP99Ns;
        public ulong LatenessMaxNs;
        public uint Halted;
        public uint Finished;
    }

    /// <summary>tc_receive_figures: what a receiver got and drew. 272 bytes.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct ReceiveFigures
    {
        /// <summary>The bytes the library wrote: this struct's size, or
        /// less from a library older than this binding.</summary>
        public ulong Size;

        public ulong Expected;
        public ulong Received;
        public ulong Lost;
        public ulong Duplicates;
        public ulong Reordered;
        public ulong Stale;
        public ulong Malformed;
        public ulong AuthFailed;
        public ulong Replayed;
        public ulong Restarts;
        public ulong SocketDrops;
        public ulong TicksApplied;
        public ulong EntitiesApplied;
        public ulong EntitiesStale;
        public ulong EntitiesRejected;
        public ulong EntitiesDespawned;
        public ulong EntitiesRemovedByRoster;
        public ulong Datagrams;
        public ulong Bytes;
        public ulong Count;
        public ulong LatencySamples;
        public ulong LatencyP50Ns;
        public ulong LatencyP99Ns;
        public ulong LatencyMaxNs;
        public ulong JitterNs;
        public ulong EventsDropped;
        public ulong Interpolated;
        public ulong Extrapolated;
        public ulong Held;
        public ulong Snapped;
        public ulong Teleports;
        public ulong InterpolationDelayNs;
        public uint HasCount;
        public uint Goodbye;
    }

    /// <summary>The C functions, one to one (tickcast.h documents each).</summary>
    public static class Native
    {
#if (UNITY_IOS || UNITY_WEBGL) && !UNITY_EDITOR
        // Linked statically into the player: no library to load.
        public const string Library = "__Internal";
#else
        public const string Library = "tickcast";
#endif

        /// <summary>TC_KEY_LEN: bytes of a pre-shared key.</summary>
        public const int KeyLength = 32;

        /// <summary>TC_ABI_VERSION: the version of the header this binding
        /// follows. <see cref="CheckAbi"/> compares it with the library's.</summary>
        public const uint AbiVersion = 3;

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern IntPtr tc_version();

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint tc_abi_version();

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern Status tc_last_error(byte[] buf, UIntPtr cap, out UIntPtr len);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern Status tc_now_ns(out ulong now);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern Status tc_broadcast_config_default(out BroadcastConfig config, UIntPtr size);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern Status tc_receiver_config_default(out ReceiverConfig config, UIntPtr size);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern Status tc_broadcaster_start(ref BroadcastConfig config, Clock clock, out IntPtr broadcaster);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern Status tc_broadcaster_publish(IntPtr b, [In] Entity[] entities, UIntPtr n);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern Status tc_broadcaster_send(IntPtr b, ulong tick, [In] Entity[] entities, UIntPtr n);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern Status tc_broadcaster_figures(IntPtr b, out BroadcastFigures figures, UIntPtr size);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern Status tc_broadcaster_local_port(IntPtr b, out ushort port);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern Status tc_broadcaster_session(IntPtr b, out ulong session);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern Status tc_broadcaster_stop(IntPtr b, out BroadcastFigures figures, UIntPtr size);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern Status tc_receiver_start(ref ReceiverConfig config, out IntPtr receiver);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern Status tc_receiver_local_port(IntPtr r, out ushort port);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern Status tc_receiver_world(IntPtr r, [Out] EntityState[] buf, UIntPtr cap, out UIntPtr n, out FrameInfo info);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern Status tc_receiver_events(IntPtr r, [Out] Event[] buf, UIntPtr cap, out UIntPtr n);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern Status tc_receiver_sample(IntPtr r, [Out] Sample[] buf, UIntPtr cap, out UIntPtr n);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern Status tc_receiver_sample_at(IntPtr r, ulong nowNs, [Out] Sample[] buf, UIntPtr cap, out UIntPtr n);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern Status tc_receiver_figures(IntPtr r, out ReceiveFigures figures, UIntPtr size);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern Status tc_receiver_stop(IntPtr r, out ReceiveFigures figures, UIntPtr size);

        /// <summary>The library's version ("0.1.0").</summary>
        public static string Version()
        {
            return Utf8.Read(tc_version());
        }

        /// <summary>Throws when the native library was built from another
        /// header than this binding (its structs would be read at the wrong
        /// offsets): call it once before anything else.</summary>
        public static void CheckAbi()
        {
            uint native = tc_abi_version();
            if (native != AbiVersion)
            {
                throw new InvalidOperationException(
                    "the tickcast library " + Version() + " has ABI version " + native
                    + ", this binding " + AbiVersion + ": use the Tickcast.cs of the same build");
            }
        }

        /// <summary>The message of the latest failed call on this thread.</summary>
        public static string LastError()
        {
            UIntPtr len;
            tc_last_error(null, UIntPtr.Zero, out len);
            var buf = new byte[(int)len.ToUInt64() + 1];
            tc_last_error(buf, Native.Size(buf.Length), out len);
            return Encoding.UTF8.GetString(buf, 0, (int)len.ToUInt64());
        }

        /// <summary>Now on the protocol's clock (ns since the Unix epoch).</summary>
        public static ulong NowNs()
        {
            ulong now;
            Check(tc_now_ns(out now), "tc_now_ns");
            return now;
        }

        public static BroadcastConfig DefaultBroadcastConfig()
        {
            BroadcastConfig c;
            Check(tc_broadcast_config_default(out c, SizeOf<BroadcastConfig>()), "tc_broadcast_config_default");
            if (c.Size < (ulong)Marshal.SizeOf(typeof(BroadcastConfig)))
            {
                // A library older than this binding: what it does not know
                // keeps the binding's defaults, and Start refuses it changed.
                c.RealtimePriority = 0;
                c.Cpu = -1;
            }
            return c;
        }

        public static ReceiverConfig DefaultReceiverConfig()
        {
            ReceiverConfig c;
            Check(tc_receiver_config_default(out c, SizeOf<ReceiverConfig>()), "tc_receiver_config_default");
            if (c.Size < (ulong)Marshal.SizeOf(typeof(ReceiverConfig)))
            {
                c.RealtimePriority = 0;
                c.Cpu = -1;
            }
            return c;
        }

        /// <summary>A count as a size_t.</summary>
        public static UIntPtr Size(int n)
        {
            return new UIntPtr((uint)n);
        }

        /// <summary>The size of a struct, as the sized calls take it
        /// (sizeof in C).</summary>
        public static UIntPtr SizeOf<T>() where T : struct
        {
            return Size(Marshal.SizeOf(typeof(T)));
        }

        /// <summary>Throws a TickcastException with the message unless status is Ok.</summary>
        public static void Check(Status status, string what)
        {
            if (status != Status.Ok)
            {
                throw new TickcastException(status, what + ": " + LastError());
            }
        }
    }

    /// <summary>A call that did not return Status.Ok.</summary>
    public sealed class TickcastException : Exception
    {
        public readonly Status Status;

        public TickcastException(Status status, string message) : base(message + " (" + status + ")")
        {
            Status = status;
        }
    }

    /// <summary>NUL-terminated UTF-8 in unmanaged memory, for the configs' strings.</summary>
    internal static class Utf8
    {
        internal static IntPtr Alloc(string s)
        {
            if (s == null)
            {
                return IntPtr.Zero;
            }
            var bytes = Encoding.UTF8.GetBytes(s);
            var p = Marshal.AllocHGlobal(bytes.Length + 1);
            Marshal.Copy(bytes, 0, p, bytes.Length);
            Marshal.WriteByte(p, bytes.Length, 0);
            return p;
        }

        internal static IntPtr AllocKey(byte[] key)
        {
            if (key == null)
            {
                return IntPtr.Zero;
            }
            if (key.Length != Native.KeyLength)
            {
                throw new ArgumentException("a key is " + Native.KeyLength + " bytes, not " + key.Length);
            }
            var p = Marshal.AllocHGlobal(key.Length);
            Marshal.Copy(key, 0, p, key.Length);
            return p;
        }

        /// <summary>Frees what Alloc or AllocKey gave, after zeroing `len` bytes of it.</summary>
        internal static void Free(IntPtr p, int zero)
        {
            if (p == IntPtr.Zero)
            {
                return;
            }
            for (int i = 0; i < zero; i++)
            {
                Marshal.WriteByte(p, i, 0);
            }
            Marshal.FreeHGlobal(p);
        }

        internal static string Read(IntPtr p)
        {
            if (p == IntPtr.Zero)
            {
                return null;
            }
            int len = 0;
            while (Marshal.ReadByte(p, len) != 0)
            {
                len++;
            }
            var bytes = new byte[len];
            Marshal.Copy(p, bytes, 0, len);
            return Encoding.UTF8.GetString(bytes);
        }
    }

    /// <summary>
    /// A running broadcaster of the game's world. Publish (tickcast's
    /// clock) or Send (the game's) the whole world; Stop or Dispose it once.
    /// </summary>
    public sealed class Broadcaster : IDisposable
    {
        IntPtr handle;

        Broadcaster(IntPtr handle)
        {
            this.handle = handle;
        }

        /// <summary>
        /// Starts one. `config` from Native.DefaultBroadcastConfig(); the
        /// strings (null: none) and the key (32 bytes, or null) given here
        /// replace its pointer fields.
        /// </summary>
        public static Broadcaster Start(BroadcastConfig config, Clock clock, string destinations,
            string group = null, string iface = null, string bind = null, byte[] key = null,
            string keyFile = null)
        {
            if (config.Size == 0)
            {
                // new BroadcastConfig(): every field 0, Size too. The library would
                // refuse it; say what to do instead.
                throw new ArgumentException(
                    "this config was not made by Native.DefaultBroadcastConfig(): start from its defaults", nameof(config));
            }
            if (config.Size < (ulong)Marshal.SizeOf(typeof(BroadcastConfig))
                && (config.RealtimePriority != 0 || config.Cpu != -1))
            {
                throw new InvalidOperationException(
                    "the tickcast library is older than this binding: it knows no RealtimePriority or Cpu");
            }
            config.Destinations = Utf8.Alloc(destinations);
            config.Group = Utf8.Alloc(group);
            config.Interface = Utf8.Alloc(iface);
            config.Bind = Utf8.Alloc(bind);
            config.Key = Utf8.AllocKey(key);
            config.KeyFile = Utf8.Alloc(keyFile);
            try
            {
                IntPtr handle;
                Native.Check(Native.tc_broadcaster_start(ref config, clock, out handle), "tc_broadcaster_start");
                return new Broadcaster(handle);
            }
            finally
            {
                Utf8.Free(config.Destinations, 0);
                Utf8.Free(config.Group, 0);
                Utf8.Free(config.Interface, 0);
                Utf8.Free(config.Bind, 0);
                Utf8.Free(config.Key, Native.KeyLength);
                Utf8.Free(config.KeyFile, 0);
            }
        }

        IntPtr Handle
        {
            get
            {
                if (handle == IntPtr.Zero)
                {
                    throw new ObjectDisposedException("Broadcaster");
                }
                return handle;
            }
        }

        /// <summary>Publishes entities[0..count] as the whole world (Clock.Tickcast).</summary>
        public void Publish(Entity[] entities, int count)
        {
            CheckCount(entities, count);
            Native.Check(Native.tc_broadcaster_publish(Handle, entities, Native.Size(count)), "tc_broadcaster_publish");
        }

        /// <summary>Sends entities[0..count] as the world of the game's tick (Clock.Game).</summary>
        public void Send(ulong tick, Entity[] entities, int count)
        {
            CheckCount(entities, count);
            Native.Check(Native.tc_broadcaster_send(Handle, tick, entities, Native.Size(count)), "tc_broadcaster_send");
        }

        /// <summary>The figures so far; from any thread.</summary>
        public BroadcastFigures Figures()
        {
            BroadcastFigures f;
            Native.Check(Native.tc_broadcaster_figures(Handle, out f, Native.SizeOf<BroadcastFigures>()), "tc_broadcaster_figures");
            return f;
        }

        /// <summary>The local UDP port (where receivers subscribe); from any thread.</summary>
        public ushort LocalPort
        {
            get
            {
                ushort port;
                Native.Check(Native.tc_broadcaster_local_port(Handle, out port), "tc_broadcaster_local_port");
                return port;
            }
        }

        /// <summary>Stops it (the goodbye goes out) and returns the final figures.</summary>
        public BroadcastFigures Stop()
        {
            var h = Handle;
            handle = IntPtr.Zero;
            GC.SuppressFinalize(this);
            BroadcastFigures f;
            Native.Check(Native.tc_broadcaster_stop(h, out f, Native.SizeOf<BroadcastFigures>()), "tc_broadcaster_stop");
            return f;
        }

        public void Dispose()
        {
            if (handle != IntPtr.Zero)
            {
                Stop();
            }
        }

        ~Broadcaster()
        {
            // Unreachable, so no other thread uses it: stopping is allowed.
            if (handle != IntPtr.Zero)
            {
                BroadcastFigures f;
                Native.tc_broadcaster_stop(handle, out f, Native.SizeOf<BroadcastFigures>());
            }
        }

        internal static void CheckCount<T>(T[] items, int count)
        {
            if (count < 0 || count > (items == null ? 0 : items.Length))
            {
                throw new ArgumentOutOfRangeException("count");
            }
        }
    }

    /// <summary>
    /// A running receiver with its game client. World, Events and Sample
    /// from the game's thread; Figures from any; Stop or Dispose it once.
    /// </summary>
    public sealed class Receiver : IDisposable
    {
        IntPtr handle;

        Receiver(IntPtr handle)
        {
            this.handle = handle;
        }

        /// <summary>
        /// Starts one. `config` from Native.DefaultReceiverConfig(); give at
        /// least one of bind, group and subscribe.
        /// </summary>
        public static Receiver Start(ReceiverConfig config, string bind, string group = null,
            string iface = null, string subscribe = null, byte[] key = null, string keyFile = null)
        {
            if (config.Size == 0)
            {
                // new ReceiverConfig(): every field 0, Size too. The library would
                // refuse it; say what to do instead.
                throw new ArgumentException(
                    "this config was not made by Native.DefaultReceiverConfig(): start from its defaults", nameof(config));
            }
            if (config.Size < (ulong)Marshal.SizeOf(typeof(ReceiverConfig))
                && (config.RealtimePriority != 0 || config.Cpu != -1))
            {
                throw new InvalidOperationException(
                    "the tickcast library is older than this binding: it knows no RealtimePriority or Cpu");
            }
            config.Bind = Utf8.Alloc(bind);
            config.Group = Utf8.Alloc(group);
            config.Interface = Utf8.Alloc(iface);
            config.Subscribe = Utf8.Alloc(subscribe);
            config.Key = Utf8.AllocKey(key);
            config.KeyFile = Utf8.Alloc(keyFile);
            try
            {
                IntPtr handle;
                Native.Check(Native.tc_receiver_start(ref config, out handle), "tc_receiver_start");
                return new Receiver(handle);
            }
            finally
            {
                Utf8.Free(config.Bind, 0);
                Utf8.Free(config.Group, 0);
                Utf8.Free(config.Interface, 0);
                Utf8.Free(config.Subscribe, 0);
                Utf8.Free(config.Key, Native.KeyLength);
                Utf8.Free(config.KeyFile, 0);
            }
        }

        IntPtr Handle
        {
            get
            {
                if (handle == IntPtr.Zero)
                {
                    throw new ObjectDisposedException("Receiver");
                }
                return handle;
            }
        }

        /// <summary>The local UDP port of the first socket; from any thread.</summary>
        public ushort LocalPort
        {
            get
            {
                ushort port;
                Native.Check(Native.tc_receiver_local_port(Handle, out port), "tc_receiver_local_port");
                return port;
            }
        }

        /// <summary>
        /// Copies the latest frame into `buffer` (grown if it is too small)
        /// and returns its entity count.
        /// </summary>
        public int World(ref EntityState[] buffer, out FrameInfo info)
        {
            while (true)
            {
                UIntPtr n;
                var cap = buffer == null ? 0 : buffer.Length;
                var s = Native.tc_receiver_world(Handle, buffer, Native.Size(cap), out n, out info);
                if (s == Status.BufferTooSmall)
                {
                    buffer = new EntityState[Grow(n)];
                    continue;
                }
                Native.Check(s, "tc_receiver_world");
                return (int)n.ToUInt64();
            }
        }

        /// <summary>Takes up to buffer.Length waiting events; returns how many.</summary>
        public int Events(Event[] buffer)
        {
            UIntPtr n;
            var cap = buffer == null ? 0 : buffer.Length;
            Native.Check(Native.tc_receiver_events(Handle, buffer, Native.Size(cap), out n), "tc_receiver_events");
            return (int)n.ToUInt64();
        }

        /// <summary>
        /// Draws every entity's position now into `buffer` (grown if it is
        /// too small) and returns the count.
        /// </summary>
        public int Sample(ref Sample[] buffer)
        {
            while (true)
            {
                UIntPtr n;
                var cap = buffer == null ? 0 : buffer.Length;
                var s = Native.tc_receiver_sample(Handle, buffer, Native.Size(cap), out n);
                if (s == Status.BufferTooSmall)
                {
                    buffer = new Sample[Grow(n)];
                    continue;
                }
                Native.Check(s, "tc_receiver_sample");
                return (int)n.ToUInt64();
            }
        }

        /// <summary>The figures so far; from any thread.</summary>
        public ReceiveFigures Figures()
        {
            ReceiveFigures f;
            Native.Check(Native.tc_receiver_figures(Handle, out f, Native.SizeOf<ReceiveFigures>()), "tc_receiver_figures");
            return f;
        }

        /// <summary>Stops it and returns the final, exact figures.</summary>
        public ReceiveFigures Stop()
        {
            var h = Handle;
            handle = IntPtr.Zero;
            GC.SuppressFinalize(this);
            ReceiveFigures f;
            Native.Check(Native.tc_receiver_stop(h, out f, Native.SizeOf<ReceiveFigures>()), "tc_receiver_stop");
            return f;
        }

        public void Dispose()
        {
            if (handle != IntPtr.Zero)
            {
                Stop();
            }
        }

        ~Receiver()
        {
            if (handle != IntPtr.Zero)
            {
                ReceiveFigures f;
                Native.tc_receiver_stop(handle, out f, Native.SizeOf<ReceiveFigures>());
            }
        }

        /// <summary>Room for `needed` and a quarter more: the next frame may be larger.</summary>
        static int Grow(UIntPtr needed)
        {
            var n = (long)needed.ToUInt64();
            return (int)Math.Min(int.MaxValue, n + n / 4 + 16);
        }
    }
}
